// command:remote:Command for the pulumi-resource-command stand-in: runs the command over SSH
// (golang.org/x/crypto/ssh) the way the upstream provider documents it:
//   - one session per command: `environment` (and PULUMI_COMMAND_STDOUT/_STDERR of the previous run) are
//     sent as SSH "env" requests, which an sshd without AcceptEnv refuses: they are then silently dropped;
//   - `stdin` is the session's standard input; stdout and stderr are captured;
//   - connection: host, port (22), user (root), privateKey (+ privateKeyPassword), password, agentSocketPath
//     (default $SSH_AUTH_SOCK), hostKey (checked when set, ignored when not), dialErrorLimit (10),
//     perDialTimeout (15 s), and proxy (a bastion with the same fields): the target is dialled through it.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

const remoteCommand = "command:remote:Command"

type conn struct {
	host, user, password, privateKey, privateKeyPassword, agentSocket, hostKey string
	port, dialErrorLimit, perDialTimeout                                       int
	proxy                                                                      *conn
}

func num(props resource.PropertyMap, key resource.PropertyKey, def int) int {
	if v, ok := props[key]; ok {
		if v = unwrap(v); v.IsNumber() {
			return int(v.NumberValue())
		}
	}
	return def
}

func parseConn(v resource.PropertyValue) (*conn, error) {
	v = unwrap(v)
	if !v.IsObject() {
		return nil, fmt.Errorf("connection must be an object")
	}
	p := v.ObjectValue()
	c := &conn{
		host:               str(p, "host"),
		user:               str(p, "user"),
		password:           str(p, "password"),
		privateKey:         str(p, "privateKey"),
		privateKeyPassword: str(p, "privateKeyPassword"),
		agentSocket:        str(p, "agentSocketPath"),
		hostKey:            str(p, "hostKey"),
		port:               num(p, "port", 22),
		dialErrorLimit:     num(p, "dialErrorLimit", 10),
		perDialTimeout:     num(p, "perDialTimeout", 15),
	}
	if c.host == "" {
		return nil, fmt.Errorf("connection.host is required")
	}
	if c.user == "" {
		c.user = "root"
	}
	if c.agentSocket == "" {
		c.agentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if pv, ok := p["proxy"]; ok && !unwrap(pv).IsNull() {
		proxy, err := parseConn(pv)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		c.proxy = proxy
	}
	return c, nil
}

func (c *conn) address() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

func (c *conn) config() (*ssh.ClientConfig, error) {
	var auths []ssh.AuthMethod
	if c.privateKey != "" {
		var signer ssh.Signer
		var err error
		if c.privateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.privateKey), []byte(c.privateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.privateKey))
		}
		if err != nil {
			return nil, fmt.Errorf("cannot parse the private key for %s: %w", c.address(), err)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	}
	if c.password != "" {
		auths = append(auths, ssh.Password(c.password))
	}
	if c.agentSocket != "" {
		if a, err := net.Dial("unix", c.agentSocket); err == nil {
			auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(a).Signers))
		}
	}
	hostKeyCallback := ssh.InsecureIgnoreHostKey() // upstream: "If not provided, the host key will be ignored."
	if c.hostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.hostKey))
		if err != nil {
			return nil, fmt.Errorf("cannot parse hostKey for %s: %w", c.address(), err)
		}
		hostKeyCallback = ssh.FixedHostKey(key)
	}
	return &ssh.ClientConfig{User: c.user, Auth: auths, HostKeyCallback: hostKeyCallback,
		Timeout: time.Duration(c.perDialTimeout) * time.Second}, nil
}

// dial connects to c, through its proxy when it has one, retrying up to dialErrorLimit times.
func (c *conn) dial(ctx context.Context) (*ssh.Client, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	var proxy *ssh.Client
	if c.proxy != nil {
		if proxy, err = c.proxy.dial(ctx); err != nil {
			return nil, fmt.Errorf("proxy %s: %w", c.proxy.address(), err)
		}
	}
	limit := c.dialErrorLimit
	var last error
	for attempt := 1; limit < 0 || attempt <= limit; attempt++ {
		var client *ssh.Client
		if proxy != nil {
			var raw net.Conn
			if raw, last = proxy.Dial("tcp", c.address()); last == nil {
				var cc ssh.Conn
				var chans <-chan ssh.NewChannel
				var reqs <-chan *ssh.Request
				if cc, chans, reqs, last = ssh.NewClientConn(raw, c.address(), cfg); last == nil {
					client = ssh.NewClient(cc, chans, reqs)
				}
			}
		} else {
			client, last = ssh.Dial("tcp", c.address(), cfg)
		}
		if last == nil {
			return client, nil
		}
		if strings.Contains(last.Error(), "unable to authenticate") || strings.Contains(last.Error(), "host key mismatch") {
			break // retrying cannot help
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("dial %s@%s: %w", c.user, c.address(), last)
}

// runRemote runs command on the resource's connection.
func runRemote(ctx context.Context, command string, props resource.PropertyMap, prev resource.PropertyMap) (string, string, error) {
	c, err := parseConn(props["connection"])
	if err != nil {
		return "", "", err
	}
	client, err := c.dial(ctx)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", fmt.Errorf("ssh session on %s: %w", c.address(), err)
	}
	defer session.Close()
	if v, ok := props["environment"]; ok {
		if v = unwrap(v); v.IsObject() {
			for k, e := range v.ObjectValue() {
				_ = session.Setenv(string(k), unwrap(e).StringValue()) // refused without AcceptEnv: dropped
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
		_ = session.Setenv("PULUMI_COMMAND_STDOUT", str(prev, "stdout"))
		_ = session.Setenv("PULUMI_COMMAND_STDERR", str(prev, "stderr"))
	}
	if stdin := str(props, "stdin"); stdin != "" {
		session.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- session.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		err = ctx.Err()
	}
	out := strings.TrimSuffix(stdout.String(), "\n")
	errOut := strings.TrimSuffix(stderr.String(), "\n")
	if err != nil {
		return out, errOut, fmt.Errorf("%w: running %q on %s:\nStdout:\n%s\nStderr:\n%s", err, command, c.address(), out, errOut)
	}
	return out, errOut, nil
}
