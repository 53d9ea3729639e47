// pulumi-resource-command: a local-only stand-in for the pulumi-command provider.
//
// The upstream provider (github.com/pulumi/pulumi-command/provider) is not served
// by the Go module proxy, so it cannot be built here. This plugin implements the
// one resource the e2e tier needs, command:local:Command, with the upstream
// provider's documented behaviour:
//   - create runs `create`; outputs are the inputs plus stdout and stderr, each
//     with one trailing newline removed;
//   - a change of any input updates in place and runs `update` (or `create` when
//     `update` is unset); `triggers` changes replace (the Python SDK also asks the
//     engine for that with replace_on_changes);
//   - delete runs `delete`; update and delete see the previous PULUMI_COMMAND_STDOUT
//     and PULUMI_COMMAND_STDERR unless addPreviousOutputInEnv is false;
//   - commands never run in preview; stdout/stderr are then unknown;
//   - interpreter defaults to ["/bin/sh", "-c"]; dir, environment and stdin apply.
//
// command:remote:Command (over SSH) is in remote.go, command:remote:CopyToRemote
// (over SFTP) in copy.go.
// Not implemented: command:local:run, assetPaths and archivePaths (rejected at check). It reports the version set by -X main.version
// so that the engine pairs it with the pinned Python SDK.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

var version = "1.2.1"

const localCommand = "command:local:Command"

type commandProvider struct {
	plugin.UnimplementedProvider
}

func (p *commandProvider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v, err := semver.ParseTolerant(version)
	if err != nil {
		return plugin.PluginInfo{}, err
	}
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *commandProvider) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	return plugin.GetSchemaResponse{Schema: []byte(fmt.Sprintf(`{"name":"command","version":%q}`, version))}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req plugin.CheckConfigRequest) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *commandProvider) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffConfigResponse{Changes: plugin.DiffNone}, nil
}

func (p *commandProvider) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func checkType(t string) error {
	if t != localCommand && t != remoteCommand && t != copyToRemote {
		return fmt.Errorf("this pulumi-resource-command stand-in supports only %s, %s and %s, not %s",
			localCommand, remoteCommand, copyToRemote, t)
	}
	return nil
}

// execute runs command for a resource of type t: locally, or over SSH for command:remote:Command.
func execute(ctx context.Context, t string, command string, props, prev resource.PropertyMap) (string, string, error) {
	if t == remoteCommand {
		return runRemote(ctx, command, props, prev)
	}
	return run(ctx, command, props, prev)
}

func (p *commandProvider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	if err := checkType(string(req.Type)); err != nil {
		return plugin.CheckResponse{}, err
	}
	var failures []plugin.CheckFailure
	if string(req.Type) == copyToRemote {
		for _, problem := range checkCopy(req.News) {
			failures = append(failures, plugin.CheckFailure{Property: "source", Reason: problem})
		}
		return plugin.CheckResponse{Properties: req.News, Failures: failures}, nil
	}
	for _, k := range []resource.PropertyKey{"assetPaths", "archivePaths"} {
		if v, ok := req.News[k]; ok && !v.IsNull() {
			failures = append(failures, plugin.CheckFailure{Property: k, Reason: "not supported by this stand-in provider"})
		}
	}
	return plugin.CheckResponse{Properties: req.News, Failures: failures}, nil
}

func (p *commandProvider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	olds := req.OldInputs
	if olds == nil {
		olds = req.OldOutputs
	}
	diff := olds.Diff(req.NewInputs, func(k resource.PropertyKey) bool {
		return k == "stdout" || k == "stderr"
	})
	if diff == nil || !diff.AnyChanges() {
		return plugin.DiffResponse{Changes: plugin.DiffNone}, nil
	}
	res := plugin.DiffResponse{Changes: plugin.DiffSome, DetailedDiff: plugin.NewDetailedDiffFromObjectDiff(diff, true)}
	for _, k := range diff.ChangedKeys() {
		res.ChangedKeys = append(res.ChangedKeys, k)
		if k == "triggers" {
			res.ReplaceKeys = append(res.ReplaceKeys, k)
		}
	}
	return res, nil
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() || v.IsOutput() {
		if v.IsSecret() {
			v = v.SecretValue().Element
		} else {
			v = v.OutputValue().Element
		}
	}
	return v
}

func str(props resource.PropertyMap, key resource.PropertyKey) string {
	v, ok := props[key]
	if !ok {
		return ""
	}
	v = unwrap(v)
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

// run executes command with the resource's interpreter, dir, environment and stdin.
func run(ctx context.Context, command string, props resource.PropertyMap, prev resource.PropertyMap) (string, string, error) {
	interpreter := []string{"/bin/sh", "-c"}
	if v, ok := props["interpreter"]; ok {
		if v = unwrap(v); v.IsArray() && len(v.ArrayValue()) > 0 {
			interpreter = nil
			for _, e := range v.ArrayValue() {
				interpreter = append(interpreter, unwrap(e).StringValue())
			}
		}
	}
	cmd := exec.CommandContext(ctx, interpreter[0], append(interpreter[1:], command)...)
	cmd.Dir = str(props, "dir")
	cmd.Env = os.Environ()
	if v, ok := props["environment"]; ok {
		if v = unwrap(v); v.IsObject() {
			for k, e := range v.ObjectValue() {
				cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", k, unwrap(e).StringValue()))
			}
		}
	}
	addPrev := true
	if v, ok := props["addPreviousOutputInEnv"]; ok {
		if v = unwrap(v); v.IsBool() {
			addPrev = v.BoolValue()
		}
	}
	if prev != nil && addPrev {
		cmd.Env = append(cmd.Env, "PULUMI_COMMAND_STDOUT="+str(prev, "stdout"), "PULUMI_COMMAND_STDERR="+str(prev, "stderr"))
	}
	if stdin := str(props, "stdin"); stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSuffix(stdout.String(), "\n")
	errOut := strings.TrimSuffix(stderr.String(), "\n")
	if err != nil {
		return out, errOut, fmt.Errorf("%w: running %q:\nStdout:\n%s\nStderr:\n%s", err, command, out, errOut)
	}
	return out, errOut, nil
}

func outputs(inputs resource.PropertyMap, stdout, stderr resource.PropertyValue) resource.PropertyMap {
	outs := inputs.Copy()
	outs["stdout"] = stdout
	outs["stderr"] = stderr
	return outs
}

func unknown() resource.PropertyValue { return resource.MakeComputed(resource.NewStringProperty("")) }

func (p *commandProvider) Create(ctx context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	if err := checkType(string(req.Type)); err != nil {
		return plugin.CreateResponse{}, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := resource.ID(req.URN.Name() + "-" + hex.EncodeToString(suffix))
	if string(req.Type) == copyToRemote {
		if req.Preview {
			return plugin.CreateResponse{ID: "", Properties: req.Properties.Copy()}, nil
		}
		if err := runCopy(ctx, req.Properties); err != nil {
			return plugin.CreateResponse{Status: resource.StatusUnknown}, err
		}
		return plugin.CreateResponse{ID: id, Properties: req.Properties.Copy()}, nil
	}
	if req.Preview {
		return plugin.CreateResponse{ID: "", Properties: outputs(req.Properties, unknown(), unknown())}, nil
	}
	var stdout, stderr string
	if c := str(req.Properties, "create"); c != "" {
		var err error
		stdout, stderr, err = execute(ctx, string(req.Type), c, req.Properties, nil)
		if err != nil {
			return plugin.CreateResponse{Status: resource.StatusUnknown}, err
		}
	}
	return plugin.CreateResponse{ID: id, Properties: outputs(req.Properties,
		resource.NewStringProperty(stdout), resource.NewStringProperty(stderr))}, nil
}

func (p *commandProvider) Update(ctx context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	if string(req.URN.Type()) == copyToRemote {
		// Upstream copies again only when the source's hash or the remote path changed.
		oldSrc, _ := parseSource(req.OldOutputs)
		newSrc, err := parseSource(req.NewInputs)
		if err != nil {
			return plugin.UpdateResponse{}, err
		}
		moved := str(req.OldOutputs, "remotePath") != str(req.NewInputs, "remotePath")
		if !req.Preview && (moved || oldSrc.hash != newSrc.hash || newSrc.hash == "") {
			if err := runCopy(ctx, req.NewInputs); err != nil {
				return plugin.UpdateResponse{Status: resource.StatusPartialFailure, Properties: req.OldOutputs}, err
			}
		}
		return plugin.UpdateResponse{Properties: req.NewInputs.Copy()}, nil
	}
	c := str(req.NewInputs, "update")
	if c == "" {
		c = str(req.NewInputs, "create")
	}
	if req.Preview {
		if c == "" {
			return plugin.UpdateResponse{Properties: outputs(req.NewInputs, req.OldOutputs["stdout"], req.OldOutputs["stderr"])}, nil
		}
		return plugin.UpdateResponse{Properties: outputs(req.NewInputs, unknown(), unknown())}, nil
	}
	stdout, stderr := str(req.OldOutputs, "stdout"), str(req.OldOutputs, "stderr")
	if c != "" {
		var err error
		stdout, stderr, err = execute(ctx, string(req.URN.Type()), c, req.NewInputs, req.OldOutputs)
		if err != nil {
			return plugin.UpdateResponse{Status: resource.StatusPartialFailure, Properties: req.OldOutputs}, err
		}
	}
	return plugin.UpdateResponse{Properties: outputs(req.NewInputs,
		resource.NewStringProperty(stdout), resource.NewStringProperty(stderr))}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	if string(req.URN.Type()) == copyToRemote {
		return plugin.DeleteResponse{}, nil // upstream: the copied files stay on the remote host
	}
	props := req.Inputs
	if props == nil {
		props = req.Outputs
	}
	if c := str(props, "delete"); c != "" {
		if _, _, err := execute(ctx, string(req.URN.Type()), c, props, req.Outputs); err != nil {
			return plugin.DeleteResponse{Status: resource.StatusOK}, err
		}
	}
	return plugin.DeleteResponse{}, nil
}

func (p *commandProvider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	return plugin.ReadResponse{ReadResult: plugin.ReadResult{ID: req.ID, Inputs: req.Inputs, Outputs: req.State}}, nil
}

func main() {
	err := provider.Main("command", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return plugin.NewProviderServer(&commandProvider{}), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
