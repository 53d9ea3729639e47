package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func fullEnv() map[string]string {
	return map[string]string{
		"WSF_NODE_NAME": "node-a", "WSF_POD_NAME": "pod", "WSF_POD_NAMESPACE": "ns", "WSF_POD_UID": "uid",
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
	}
}

func TestTheEnvironmentHasDefaultsForEverythingButWhereThePodRuns(t *testing.T) {
	e, err := LoadEnv(envOf(fullEnv()))
	if err != nil {
		t.Fatal(err)
	}
	want := Env{NodeName: "node-a", PodName: "pod", PodNamespace: "ns", PodUID: "uid", Mode: ModeInstall,
		APIHost: "10.96.0.1", APIPort: "443", StateDir: DefaultStateDir, RunDir: DefaultRunDir, Enter: DefaultEnter, SADir: DefaultSADir}
	if e != want {
		t.Errorf("env %+v", e)
	}
	if e.APIServerURL() != "https://10.96.0.1:443" || e.ReadyPath() != "/run/wasm-shim-fleet/ready" {
		t.Errorf("url %s, ready %s", e.APIServerURL(), e.ReadyPath())
	}
}

func TestEveryMissingVariableIsNamedOnOneLine(t *testing.T) {
	m := fullEnv()
	delete(m, "WSF_NODE_NAME")
	m["WSF_POD_UID"] = "  "
	_, err := LoadEnv(envOf(m))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "WSF_NODE_NAME") || !strings.Contains(msg, "WSF_POD_UID") || strings.Contains(msg, "WSF_POD_NAME ") ||
		strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	for name, change := range map[string][2]string{
		"mode":      {"WSF_AGENT_MODE", "remove"},
		"port":      {"KUBERNETES_SERVICE_PORT", "https"},
		"state dir": {"WSF_STATE_DIR", "etc/wasm-shim-fleet"},
	} {
		m := fullEnv()
		m[change[0]] = change[1]
		if _, err := LoadEnv(envOf(m)); err == nil || !strings.Contains(err.Error(), change[0]) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	m := fullEnv()
	m["WSF_AGENT_MODE"] = "uninstall"
	if e, err := LoadEnv(envOf(m)); err != nil || e.Mode != ModeUninstall {
		t.Errorf("uninstall mode: %+v %v", e, err)
	}
}

func TestAnIPv6APIServerIsBracketedOnce(t *testing.T) {
	for _, host := range []string{"fd00:10:96::1", "[fd00:10:96::1]"} {
		e := Env{APIHost: host, APIPort: "6443"}
		if got := e.APIServerURL(); got != "https://[fd00:10:96::1]:6443" {
			t.Errorf("%s: %s", host, got)
		}
	}
}

func stateDoc() map[string]any {
	return map[string]any{
		"version": 1, "pool": "spin-3", "desired": strings.Repeat("0f", 32),
		"releases": []string{"spin@3.1.2"}, "retiring": []string{},
		"labels":     map[string]string{"wasmtime-spin-v3-1-2": "spin-v3-1-2", "wasmtime-spin-enabled": "spin"},
		"claimLabel": "wasm-shim-fleet.io/pool", "fleetLabelPrefix": "wasmtime-",
		"statusAnnotation": "spin-3.agent.wasm-shim-fleet.io/status", "fieldManager": "wasm-shim-fleet-agent-spin-3",
		"forceLabels":   false,
		"handlers":      map[string]string{"spin": "io.containerd.spin-v3-1-2.v1", "spin-v3": "io.containerd.spin-v3-1-2.v1"},
		"verifySeconds": 120, "checkSeconds": 60,
		"scripts": map[string]string{"binaries": "b", "table": "t", "status": "s", "uninstall": "u"},
	}
}

func encode(t *testing.T, doc map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAStateAsTheProgramWritesItIsRead(t *testing.T) {
	st, err := ParseState(encode(t, stateDoc()))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pool != "spin-3" || st.CheckSeconds != 60 || st.Scripts.Uninstall != "u" || st.Labels["wasmtime-spin-enabled"] != "spin" {
		t.Errorf("state %+v", st)
	}
	// The handlers a label promises are verified even when the handlers map leaves them out.
	if got := st.VerifyHandlers(); !reflect.DeepEqual(got, []string{"spin", "spin-v3", "spin-v3-1-2"}) {
		t.Errorf("verify handlers %q", got)
	}
	if !st.IsFleetLabel("wasmtime-slight-enabled") || st.IsFleetLabel("wasm-shim-fleet.io/pool") || st.IsFleetLabel("kubernetes.io/os") {
		t.Error("IsFleetLabel")
	}
}

func TestAnUnknownVersionIsRefused(t *testing.T) {
	doc := stateDoc()
	doc["version"] = 2
	if _, err := ParseState(encode(t, doc)); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("error %v", err)
	}
	delete(doc, "version")
	if _, err := ParseState(encode(t, doc)); err == nil || !strings.Contains(err.Error(), "no version") {
		t.Errorf("error %v", err)
	}
}

func TestEveryMissingKeyIsNamed(t *testing.T) {
	doc := stateDoc()
	delete(doc, "claimLabel")
	delete(doc, "checkSeconds")
	doc["scripts"] = map[string]string{"binaries": "b", "table": "t", "status": "s"}
	_, err := ParseState(encode(t, doc))
	if err == nil || !strings.Contains(err.Error(), "claimLabel, checkSeconds, scripts.uninstall") {
		t.Errorf("error %v", err)
	}
}

func TestBadStateValuesAreAllNamed(t *testing.T) {
	doc := stateDoc()
	doc["desired"] = "abc"
	doc["checkSeconds"] = 0
	doc["fleetLabelPrefix"] = ""
	doc["labels"] = map[string]string{"other-label": "spin"}
	_, err := ParseState(encode(t, doc))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"desired", "checkSeconds", "fleetLabelPrefix is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	doc = stateDoc()
	doc["labels"] = map[string]string{"other-label": "spin"}
	if _, err := ParseState(encode(t, doc)); err == nil || !strings.Contains(err.Error(), `"other-label" does not start with fleetLabelPrefix`) {
		t.Errorf("error %v", err)
	}
	doc = stateDoc()
	doc["verifySeconds"] = "120"
	if _, err := ParseState(encode(t, doc)); err == nil || !strings.Contains(err.Error(), "verifySeconds") {
		t.Errorf("error %v", err)
	}
}

func TestTheStateDirectoryNeedsTheKitAndTheHostScript(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, StateFile), encode(t, stateDoc()), 0o644)
	_ = os.WriteFile(filepath.Join(dir, KitFile), []byte("# kit\n"), 0o644)
	if _, err := LoadState(dir); err == nil || !strings.Contains(err.Error(), HostScriptFile) {
		t.Errorf("error %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, HostScriptFile), []byte("set -eu\n"), 0o644)
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kit != "# kit\n" || st.HostScript != "set -eu\n" {
		t.Errorf("kit %q, host script %q", st.Kit, st.HostScript)
	}
}
