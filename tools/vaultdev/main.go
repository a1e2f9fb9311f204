// Command vaultdev runs a real, unsealed, in-memory HashiCorp Vault server on
// loopback for kapgw's tests and local development.
//
// No Vault binary is packaged for Debian and there is no Docker on the test
// machines, so vaultdev builds Vault's own core (vault.TestCoreUnsealedWithConfig)
// and HTTP handler from the github.com/hashicorp/vault module. It lives in its
// own Go module so that the gateway's go.mod never sees Vault's server
// dependencies.
//
// On start it mounts what `vault server -dev` would plus what kapgw needs:
// KV version 2 at kv/, Transit at transit/ and AppRole auth at approle/
// (pass -mounts=false for a bare core). The Kubernetes and userpass auth
// methods are built in too and can be enabled through sys/auth. When ready it prints exactly one JSON
// line to stdout:
//
//	{"addr":"http://127.0.0.1:PORT","token":"...","unseal_keys":["..."]}
//
// The token is a root token; the unseal keys (base64) let tests seal the
// server through PUT /v1/sys/seal and unseal it again through
// PUT /v1/sys/unseal. The server runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vaultdev: %v\n", err)
		os.Exit(1)
	}
}

// options are the command-line flags of vaultdev.
type options struct {
	addr     string
	token    string
	mounts   bool
	logLevel string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("vaultdev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "loopback address to listen on")
	fs.StringVar(&o.token, "token", "", "root token id to create (default: the generated root token)")
	fs.BoolVar(&o.mounts, "mounts", true, "mount kv/ (KV v2), transit/ and auth approle/ on start")
	fs.StringVar(&o.logLevel, "log-level", "warn", "Vault server log level (trace, debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return o, fmt.Errorf("parse -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return o, errors.New("-addr must be a loopback IP address")
	}
	return o, nil
}

// ready is the one JSON line printed when the server accepts requests.
type ready struct {
	Addr       string   `json:"addr"`
	Token      string   `json:"token"`
	UnsealKeys []string `json:"unseal_keys"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	srv, err := start(o, stderr)
	if err != nil {
		return err
	}
	defer srv.close()

	line := ready{Addr: srv.addr, Token: srv.token}
	for _, k := range srv.keys {
		line.UnsealKeys = append(line.UnsealKeys, base64.StdEncoding.EncodeToString(k))
	}
	if err := json.NewEncoder(stdout).Encode(line); err != nil {
		return fmt.Errorf("print ready line: %w", err)
	}
	<-ctx.Done()
	return nil
}
