// Package fhirvalid checks FHIR JSON in tests with a validator written by
// others: Medplum's validateResource and the HL7 R4 definitions, driven by
// tools/fhir-validate/validate.mjs in one long-lived node process, so that
// what the gateway emits is judged by something other than its own code.
//
// node and tools/fhir-validate/node_modules must be present (scripts/test.sh
// installs them); a test that needs the validator fails without them, it
// never skips.
package fhirvalid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/nodetool"
)

// setupHint tells a developer how to get the validator's dependencies.
const setupHint = "run scripts/test.sh (installs node and runs npm ci in tools/fhir-validate) first"

// Issue is one finding of the validator about one resource.
type Issue struct {
	// Index is the position of the resource in the Issues or Check call.
	Index        int    `json:"index"`
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	// Severity is fatal, error, warning or information.
	Severity string `json:"severity"`
	Path     string `json:"path"`
	Message  string `json:"message"`
}

// Failing reports whether the issue makes the resource invalid.
func (i Issue) Failing() bool {
	return i.Severity == "error" || i.Severity == "fatal"
}

// String formats the issue for a test failure message.
func (i Issue) String() string {
	return fmt.Sprintf("#%d %s/%s %s %s: %s", i.Index, i.ResourceType, i.ID, i.Severity, i.Path, i.Message)
}

// Validator is one running validator process. It is safe for concurrent use;
// resources are validated one at a time.
type Validator struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *headWriter
	done   chan struct{} // closed when the process has exited
}

// New starts a validator for the test and stops it when the test ends.
// Loading the definitions takes a second or two, so share one Validator
// between the subtests of a test.
func New(tb testing.TB) *Validator {
	tb.Helper()
	v, err := Start()
	if err != nil {
		tb.Fatalf("start FHIR validator: %v", err)
	}
	tb.Cleanup(func() {
		if err := v.Close(); err != nil {
			tb.Errorf("stop FHIR validator: %v", err)
		}
	})
	return v
}

// Start starts a validator outside a test (for TestMain); call Close when
// done.
func Start() (*Validator, error) {
	dir, err := nodetool.Dir("fhir-validate", "validate.mjs")
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node not found: %s", setupHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@medplum", "core")); err != nil {
		return nil, fmt.Errorf("%s has no node_modules: %s", dir, setupHint)
	}
	cmd := exec.Command(node, "validate.mjs", "--stream")
	cmd.Dir = dir
	return start(cmd)
}

func start(cmd *exec.Cmd) (*Validator, error) {
	v := &Validator{cmd: cmd, stderr: &headWriter{limit: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = v.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("validator stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("validator stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	v.stdin, v.out = stdin, bufio.NewReaderSize(stdout, 64<<10)
	return v, nil
}

// Check fails the test, listing every issue, when any resource has an error.
func (v *Validator) Check(tb testing.TB, resources ...[]byte) {
	tb.Helper()
	issues, err := v.Issues(resources...)
	if err != nil {
		tb.Fatalf("FHIR validator: %v", err)
	}
	var lines []string
	failing := false
	for _, i := range issues {
		failing = failing || i.Failing()
		lines = append(lines, i.String())
	}
	if failing {
		tb.Errorf("FHIR validation failed:\n%s", strings.Join(lines, "\n"))
	}
}

// Issues validates each resource and returns every issue found, including
// warnings. The error reports a validator that could not run.
func (v *Validator) Issues(resources ...[]byte) ([]Issue, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var all []Issue
	for n, res := range resources {
		issues, err := v.validate(res)
		if err != nil {
			return nil, fmt.Errorf("resource #%d: %w", n, err)
		}
		for _, i := range issues {
			i.Index = n
			all = append(all, i)
		}
	}
	return all, nil
}

// validate sends one resource as one NDJSON line and reads the answer up to
// its done marker.
func (v *Validator) validate(res []byte) ([]Issue, error) {
	var line bytes.Buffer
	if err := json.Compact(&line, res); err != nil {
		return []Issue{{ResourceType: "-", ID: "-", Severity: "fatal", Message: "invalid JSON: " + err.Error()}}, nil
	}
	line.WriteByte('\n')
	if _, err := v.stdin.Write(line.Bytes()); err != nil {
		return nil, v.crashed(err)
	}
	var issues []Issue
	for {
		text, err := v.out.ReadBytes('\n')
		if err != nil {
			return nil, v.crashed(err)
		}
		var msg struct {
			Issue
			Done bool `json:"done"`
		}
		if err := json.Unmarshal(text, &msg); err != nil {
			return nil, fmt.Errorf("validator output %q: %w", text, err)
		}
		if msg.Done {
			return issues, nil
		}
		issues = append(issues, msg.Issue)
	}
}

func (v *Validator) crashed(err error) error {
	v.stop()
	return fmt.Errorf("validator process failed: %w; stderr: %s", err, v.stderr.String())
}

// Close stops the validator process.
func (v *Validator) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stop()
}

func (v *Validator) stop() error {
	select {
	case <-v.done:
		return nil
	default:
	}
	defer close(v.done)
	_ = v.stdin.Close()
	exited := make(chan error, 1)
	go func() { exited <- v.cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			return nil // 1 only says that some resource had errors
		}
		return err
	case <-time.After(10 * time.Second):
		_ = v.cmd.Process.Kill()
		return fmt.Errorf("validator did not exit; killed")
	}
}

// headWriter keeps the first limit bytes written to it, for error messages
// about a crashed validator.
type headWriter struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (h *headWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = append(h.buf, p[:min(len(p), h.limit-len(h.buf))]...)
	return len(p), nil
}

func (h *headWriter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.buf)
}
