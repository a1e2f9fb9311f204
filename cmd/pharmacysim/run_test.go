package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/pharmacy"
	"github.com/kapgw/kapgw/pharmacy/script"
	"github.com/kapgw/kapgw/pharmacy/sign"
)

// TestRunAcceptsSignedNewRx starts the simulator on port 0 with the dev
// store's public key and delivers one signed NewRx to it.
func TestRunAcceptsSignedNewRx(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := secrets.OpenDevStore(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), dir, "pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Signer("pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := s.PublicKey(context.Background())
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-public-key", keyFile}, func(string) string { return "" }, pw, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain

	ep, _ := kap.Decode(kaptest.Example(kaptest.HomeDosing))
	body, err := script.NewRx(ep, 0, script.Envelope{From: "org-med-1", MessageID: "M1", SentTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sign.Sign(context.Background(), s, body)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pharmacy.NewClient("http://"+strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Send(context.Background(), body, jws); err != nil || !out.Delivered() {
		t.Errorf("Send = %+v, %v", out, err)
	}
}

func TestRunRefusesMissingKey(t *testing.T) {
	t.Parallel()
	if err := run(context.Background(), nil, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("run without -public-key: no error")
	}
}
