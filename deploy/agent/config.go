package main

// Everything the agent reads from its environment and from the state files the program renders, in one
// place and validated at start: a bad value stops the agent before it touches the node or the API, with
// one line that names what is wrong and where it came from.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Agent modes (WSF_AGENT_MODE).
const (
	ModeInstall   = "install"
	ModeUninstall = "uninstall"
)

// Defaults of the optional variables; the DaemonSet's pod spec mounts the files there.
const (
	DefaultStateDir = "/etc/wasm-shim-fleet"
	DefaultRunDir   = "/run/wasm-shim-fleet"
	DefaultEnter    = "/wsf-enter"
	DefaultSADir    = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Files in the state directory (one ConfigMap) and the service account directory.
const (
	StateFile      = "state.json"
	KitFile        = "kit.sh"
	HostScriptFile = "run-on-host.sh"
	TokenFile      = "token"
	CAFile         = "ca.crt"
)

// StateVersion is the only state.json layout this agent reads.
const StateVersion = 1

// Env is what the DaemonSet's pod spec tells the agent about where it runs.
type Env struct {
	NodeName     string
	PodName      string
	PodNamespace string
	PodUID       string
	Mode         string
	APIHost      string
	APIPort      string
	StateDir     string
	RunDir       string
	Enter        string
	SADir        string
	// DaemonSet is the name of this pod's DaemonSet (optional): an install-mode agent that ends on a node the
	// DaemonSet no longer selects takes the pool off that node.
	DaemonSet string
}

// ConfigError is a configuration the agent cannot start with; its text is one line.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// requiredEnv lists the variables without a default and where the pod spec gets each.
var requiredEnv = []struct{ name, from string }{
	{"WSF_NODE_NAME", "the downward API spec.nodeName"},
	{"WSF_POD_NAME", "the downward API metadata.name"},
	{"WSF_POD_NAMESPACE", "the downward API metadata.namespace"},
	{"WSF_POD_UID", "the downward API metadata.uid"},
	{"KUBERNETES_SERVICE_HOST", "the kubelet, or the pod spec"},
	{"KUBERNETES_SERVICE_PORT", "the kubelet, or the pod spec"},
}

// LoadEnv reads and validates the environment through getenv. Every missing variable is named at once, so
// a broken pod spec is fixed in one round.
func LoadEnv(getenv func(string) string) (Env, error) {
	var missing []string
	for _, r := range requiredEnv {
		if strings.TrimSpace(getenv(r.name)) == "" {
			missing = append(missing, fmt.Sprintf("%s (from %s)", r.name, r.from))
		}
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return Env{}, &ConfigError{fmt.Sprintf("%s %s not set; the DaemonSet's pod spec sets them",
			strings.Join(missing, ", "), verb)}
	}
	e := Env{
		NodeName:     strings.TrimSpace(getenv("WSF_NODE_NAME")),
		PodName:      strings.TrimSpace(getenv("WSF_POD_NAME")),
		PodNamespace: strings.TrimSpace(getenv("WSF_POD_NAMESPACE")),
		PodUID:       strings.TrimSpace(getenv("WSF_POD_UID")),
		Mode:         orDefault(getenv("WSF_AGENT_MODE"), ModeInstall),
		APIHost:      strings.TrimSpace(getenv("KUBERNETES_SERVICE_HOST")),
		APIPort:      strings.TrimSpace(getenv("KUBERNETES_SERVICE_PORT")),
		StateDir:     orDefault(getenv("WSF_STATE_DIR"), DefaultStateDir),
		RunDir:       orDefault(getenv("WSF_RUN_DIR"), DefaultRunDir),
		Enter:        orDefault(getenv("WSF_ENTER"), DefaultEnter),
		SADir:        orDefault(getenv("WSF_SA_DIR"), DefaultSADir),
		DaemonSet:    strings.TrimSpace(getenv("WSF_DAEMONSET")),
	}
	var bad []string
	if e.Mode != ModeInstall && e.Mode != ModeUninstall {
		bad = append(bad, fmt.Sprintf("WSF_AGENT_MODE=%q is not %q or %q", e.Mode, ModeInstall, ModeUninstall))
	}
	if p, err := strconv.Atoi(e.APIPort); err != nil || p < 1 || p > 65535 {
		bad = append(bad, fmt.Sprintf("KUBERNETES_SERVICE_PORT=%q is not a port number (1-65535)", e.APIPort))
	}
	for _, v := range []struct{ name, value string }{
		{"WSF_STATE_DIR", e.StateDir}, {"WSF_RUN_DIR", e.RunDir}, {"WSF_ENTER", e.Enter}, {"WSF_SA_DIR", e.SADir},
	} {
		if !filepath.IsAbs(v.value) {
			bad = append(bad, fmt.Sprintf("%s=%q is not an absolute path", v.name, v.value))
		}
	}
	if len(bad) > 0 {
		return Env{}, &ConfigError{strings.Join(bad, "; ")}
	}
	return e, nil
}

func orDefault(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

// APIServerURL is the API server's base URL. An IPv6 address is bracketed (and one that came bracketed is
// not bracketed twice).
func (e Env) APIServerURL() string {
	host := strings.TrimSuffix(strings.TrimPrefix(e.APIHost, "["), "]")
	return "https://" + net.JoinHostPort(host, e.APIPort)
}

// ReadyPath is the file whose presence makes the pod Ready.
func (e Env) ReadyPath() string { return filepath.Join(e.RunDir, "ready") }

// Scripts are the host scripts the program rendered for this pool (POSIX sh, run through the node kit).
type Scripts struct {
	Binaries  string `json:"binaries"`
	Table     string `json:"table"`
	Status    string `json:"status"`
	Uninstall string `json:"uninstall"`
}

// State is the pool's desired state (state.json) and the two texts beside it.
type State struct {
	Version          int               `json:"version"`
	Pool             string            `json:"pool"`
	Desired          string            `json:"desired"`
	Releases         []string          `json:"releases"`
	Retiring         []string          `json:"retiring"`
	Labels           map[string]string `json:"labels"`
	ClaimLabel       string            `json:"claimLabel"`
	FleetLabelPrefix string            `json:"fleetLabelPrefix"`
	StatusAnnotation string            `json:"statusAnnotation"`
	FieldManager     string            `json:"fieldManager"`
	ForceLabels      bool              `json:"forceLabels"`
	Handlers         map[string]string `json:"handlers"`
	VerifySeconds    int               `json:"verifySeconds"`
	CheckSeconds     int               `json:"checkSeconds"`
	Scripts          Scripts           `json:"scripts"`

	// Kit is the node kit's text, the payload of the binaries script.
	Kit string `json:"-"`
	// HostScript is run-on-host.sh, which every host run executes.
	HostScript string `json:"-"`
}

// stateKeys are the keys state.json must hold; none has a default, because a default would be a guess
// about the pool that the program did not make.
var stateKeys = []string{
	"version", "pool", "desired", "releases", "retiring", "labels", "claimLabel", "fleetLabelPrefix",
	"statusAnnotation", "fieldManager", "forceLabels", "handlers", "verifySeconds", "checkSeconds", "scripts",
}

var scriptKeys = []string{"binaries", "table", "status", "uninstall"}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadState reads state.json, kit.sh and run-on-host.sh from dir.
func LoadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("cannot read the pool's state: %v (the pool's ConfigMap is mounted there)", err)}
	}
	st, err := ParseState(data)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("%s: %v", path, err)}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{KitFile, &st.Kit}, {HostScriptFile, &st.HostScript}} {
		p := filepath.Join(dir, f.name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, &ConfigError{fmt.Sprintf("cannot read %s: %v (it comes with state.json in the pool's ConfigMap)", f.name, err)}
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, &ConfigError{fmt.Sprintf("%s is empty (it comes with state.json in the pool's ConfigMap)", p)}
		}
		*f.dst = string(b)
	}
	return st, nil
}

// ParseState decodes and validates state.json. Every missing key and every bad value is named in one
// error, not only the first.
func ParseState(data []byte) (*State, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	rawVersion, ok := raw["version"]
	if !ok {
		return nil, fmt.Errorf("no version (this agent reads version %d)", StateVersion)
	}
	var version int
	if err := json.Unmarshal(rawVersion, &version); err != nil || version != StateVersion {
		return nil, fmt.Errorf("version %s is not one this agent reads (%d): run the agent image that matches the program",
			string(rawVersion), StateVersion)
	}
	var missing []string
	for _, k := range stateKeys {
		if _, ok := raw[k]; !ok {
			missing = append(missing, k)
		}
	}
	if rs, ok := raw["scripts"]; ok {
		var scripts map[string]json.RawMessage
		if err := json.Unmarshal(rs, &scripts); err == nil {
			for _, k := range scriptKeys {
				if _, ok := scripts[k]; !ok {
					missing = append(missing, "scripts."+k)
				}
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing key(s) %s", strings.Join(missing, ", "))
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("a value has the wrong type: %v", err)
	}
	if problems := st.problems(); len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return &st, nil
}

func (st *State) problems() []string {
	var out []string
	need := func(key, value string) {
		if strings.TrimSpace(value) == "" {
			out = append(out, key+" is empty")
		}
	}
	need("pool", st.Pool)
	need("claimLabel", st.ClaimLabel)
	need("statusAnnotation", st.StatusAnnotation)
	need("fieldManager", st.FieldManager)
	// An empty prefix would make every label on the node a fleet label, and the refusal rules would then
	// refuse every node that carries any label at all.
	need("fleetLabelPrefix", st.FleetLabelPrefix)
	need("scripts.binaries", st.Scripts.Binaries)
	need("scripts.table", st.Scripts.Table)
	need("scripts.status", st.Scripts.Status)
	need("scripts.uninstall", st.Scripts.Uninstall)
	if !hex64.MatchString(st.Desired) {
		out = append(out, fmt.Sprintf("desired %q is not 64 lower-case hex digits", st.Desired))
	}
	if st.VerifySeconds <= 0 {
		out = append(out, fmt.Sprintf("verifySeconds %d is not positive", st.VerifySeconds))
	}
	if st.CheckSeconds <= 0 {
		out = append(out, fmt.Sprintf("checkSeconds %d is not positive", st.CheckSeconds))
	}
	if st.FleetLabelPrefix != "" && strings.HasPrefix(st.ClaimLabel, st.FleetLabelPrefix) {
		out = append(out, fmt.Sprintf("claimLabel %q starts with fleetLabelPrefix %q: the claim would read as a promised handler",
			st.ClaimLabel, st.FleetLabelPrefix))
	}
	for _, k := range sortedKeys(st.Labels) {
		if st.FleetLabelPrefix != "" && !strings.HasPrefix(k, st.FleetLabelPrefix) {
			out = append(out, fmt.Sprintf("labels key %q does not start with fleetLabelPrefix %q", k, st.FleetLabelPrefix))
		}
		if strings.TrimSpace(st.Labels[k]) == "" {
			out = append(out, fmt.Sprintf("labels key %q names no handler", k))
		}
	}
	return out
}

// IsFleetLabel reports whether key is a label the fleet composes (the claim label is not one).
func (st *State) IsFleetLabel(key string) bool {
	return key != st.ClaimLabel && strings.HasPrefix(key, st.FleetLabelPrefix)
}

// VerifyHandlers are the handler names the kubelet must report before any label goes on: the keys of
// handlers and every handler a label promises. A label promising a handler that is not checked is the
// mistake this agent exists to prevent, so a handler listed in only one of the two maps is checked too.
func (st *State) VerifyHandlers() []string {
	set := map[string]bool{}
	for h := range st.Handlers {
		set[h] = true
	}
	for _, h := range st.Labels {
		set[h] = true
	}
	return sortedKeys(set)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
