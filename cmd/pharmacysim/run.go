package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kapgw/kapgw/pharmacy/sim"
)

// run starts the simulator and serves until ctx ends. It prints
// "listening on ADDR" once ready so that scripts and tests can find a port
// chosen with -addr 127.0.0.1:0.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pharmacysim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	pubFile := fs.String("public-key", "", "PEM file with the gateway's signing public key (required)")
	alg := fs.String("alg", "ES384", "JWS algorithm of that key: ES384 or RS384")
	callback := fs.String("callback-url", "", "where to POST fill callbacks, e.g. http://127.0.0.1:8080/pharmacy/v1/callbacks")
	delay := fs.Duration("callback-delay", 500*time.Millisecond, "pause before each callback")
	var f sim.Faults
	fs.IntVar(&f.FailFirst, "fail-first", 0, "answer 503 to the first N requests")
	fs.IntVar(&f.SlowFirst, "slow-first", 0, "answer the first N requests after -slow")
	fs.DurationVar(&f.Slow, "slow", 30*time.Second, "delay of slow answers")
	fs.BoolVar(&f.ErrorAll, "error", false, "answer every NewRx with a SCRIPT Error")
	fs.BoolVar(&f.Duplicate, "duplicate-callbacks", false, "send every callback twice")
	fs.BoolVar(&f.OutOfOrder, "out-of-order-callbacks", false, "send fill callbacks last first")
	fs.BoolVar(&f.BadSignature, "bad-callback-signature", false, "sign callbacks with a wrong HMAC")
	refills := fs.Int("refills", 0, "fill and report N refills straight after the first fill (early refills)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := getenv("PHARMACYSIM_CALLBACK_SECRET")
	if *pubFile == "" || (*callback != "" && secret == "") {
		return errors.New("-public-key is required, and PHARMACYSIM_CALLBACK_SECRET with -callback-url")
	}
	pub, err := readPublicKey(*pubFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ph := sim.New(sim.Config{
		Log: log, Keys: sim.TrustKey(*alg, pub), CallbackURL: *callback, Secret: []byte(secret),
		CallbackDelay: *delay, Refills: *refills, Faults: f, HTTP: &http.Client{Timeout: 10 * time.Second},
	})
	defer ph.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: ph.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	fmt.Fprintln(stdout, "listening on", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("public key: no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return pub, nil
}
