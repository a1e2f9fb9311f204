// Package fhirpeer starts, for tests, a FHIR R4 server that is not ours:
// tools/fhir-peer/server.mjs, Medplum's FHIR router over its in-memory
// repository, on loopback. Sync tests push to it (through Fault, a
// fault-injecting reverse proxy) and count what it holds by identifier.
//
// node and tools/fhir-peer/node_modules must be present (scripts/test.sh
// installs them); a test that needs the peer fails without them, it never
// skips.
package fhirpeer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/nodetool"
)

// setupHint tells a developer how to get the peer's dependencies.
const setupHint = "run scripts/test.sh (installs node and runs npm ci in tools/fhir-peer) first"

// Peer is one running FHIR peer process.
type Peer struct {
	// Base is the FHIR base URL, http://127.0.0.1:PORT/fhir/R4.
	Base  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// Start starts a peer for the test and stops it when the test ends. Loading
// the Medplum definitions takes a second or two.
func Start(tb testing.TB) *Peer {
	tb.Helper()
	p, err := start()
	if err != nil {
		tb.Fatalf("start FHIR peer: %v", err)
	}
	tb.Cleanup(p.close)
	return p
}

func start() (*Peer, error) {
	dir, err := nodetool.Dir("fhir-peer", "server.mjs")
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node not found: %s", setupHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@medplum", "fhir-router")); err != nil {
		return nil, fmt.Errorf("%s has no node_modules: %s", dir, setupHint)
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("peer stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("peer stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	p := &Peer{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case line := <-ready:
		var msg struct {
			Base string `json:"base"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Base == "" {
			p.close()
			return nil, fmt.Errorf("peer did not report its port (got %q)", strings.TrimSpace(line))
		}
		p.Base = msg.Base
		return p, nil
	case <-time.After(60 * time.Second):
		p.close()
		return nil, errors.New("peer not ready after 60s")
	}
}

// close ends the peer: closing stdin makes it exit; a kill follows if not.
func (p *Peer) close() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Resource is one resource the peer holds, as raw JSON with the fields
// tests look at.
type Resource struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID string `json:"versionId"`
	} `json:"meta"`
	Identifier []Identifier    `json:"identifier"`
	Raw        json.RawMessage `json:"-"`
}

// Identifier is a FHIR Identifier's system and value.
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// All returns every current resource of type typ the peer holds, following
// the search's next links to the end.
func (p *Peer) All(ctx context.Context, typ string) ([]Resource, error) {
	var out []Resource
	next := p.Base + "/" + typ + "?_count=1000"
	for next != "" {
		page, link, err := p.page(ctx, next)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		next = link
	}
	return out, nil
}

func (p *Peer) page(ctx context.Context, u string) ([]Resource, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("peer search: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("peer search: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("peer search %s: status %d", pathOf(u), resp.StatusCode)
	}
	var b struct {
		Link []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&b); err != nil {
		return nil, "", fmt.Errorf("peer search %s: %w", pathOf(u), err)
	}
	var out []Resource
	for _, e := range b.Entry {
		var r Resource
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			return nil, "", fmt.Errorf("peer search %s: %w", pathOf(u), err)
		}
		r.Raw = e.Resource
		out = append(out, r)
	}
	next := ""
	for _, l := range b.Link {
		if l.Relation == "next" {
			next = l.URL
		}
	}
	return out, next, nil
}

func pathOf(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Path
	}
	return "?"
}
