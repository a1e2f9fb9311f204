package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// bareHandler serves body as it is: the least any FHIR read can do.
func bareHandler(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(body)
	})
}

// serveBare serves body from memory on a loopback port with a bare
// net/http handler in the load generator's own process: the practical
// limit of any Go server on this machine, without the process boundary
// kapgw and the peer sit behind.
func serveBare(body []byte) (func(), string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: bareHandler(body)}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, "http://" + ln.Addr().String() + "/bare", nil
}

// serveBareProcess serves body like serveBare but from a child process
// (kapgw-load serve-bare), so that the bare handler pays the same process
// boundary, scheduling and wake-ups as kapgw serve and the peer.
func serveBareProcess(body []byte) (func(), string, error) {
	dir, err := os.MkdirTemp("", "kapgw-load-bare-")
	if err != nil {
		return nil, "", err
	}
	file := filepath.Join(dir, "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	cmd := exec.Command(self, "serve-bare", "--body", file)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start bare server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		stop()
		return nil, "", fmt.Errorf("bare server did not start: %q %v", line, err)
	}
	return stop, strings.TrimSpace(line), nil
}

// runServeBare is the child of serveBareProcess: it serves the file's
// bytes on a loopback port, prints its URL, and stops on interrupt.
func runServeBare(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve-bare", flag.ContinueOnError)
	file := fs.String("body", "", "file whose bytes every response carries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: bareHandler(body)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if _, err := fmt.Fprintf(stdout, "http://%s/bare\n", ln.Addr()); err != nil {
		return err
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
