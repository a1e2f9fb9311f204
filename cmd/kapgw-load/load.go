package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/kapgw/kapgw/internal/auth"
)

// loadConfig is one load run.
type loadConfig struct {
	base, server, op string
	seed             Seed
	bare, auth       bool
	bareProcess      bool
	conc, max        int
	dur              time.Duration
	rate             float64
}

func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c loadConfig
	seedFile := fs.String("seed", "seed.json", "seed description written by kapgw-load seed")
	fs.StringVar(&c.base, "url", "", "FHIR base URL on loopback (http://127.0.0.1:PORT/fhir/r4)")
	fs.StringVar(&c.server, "server", "kapgw", "whose ids to ask for: kapgw or peer")
	fs.StringVar(&c.op, "op", "read", "read (Observation by id) or search (Observation?patient&code&_count=20)")
	fs.BoolVar(&c.bare, "bare", false, "fetch the response once, then load a bare net/http handler serving it from memory")
	fs.BoolVar(&c.bareProcess, "bare-process", false, "with --bare, serve the bytes from a child process (kapgw-load serve-bare), as kapgw and the peer are served, instead of from the load generator's own")
	fs.BoolVar(&c.auth, "auth", true, "get a SMART token as the seed's partner client (kapgw only)")
	fs.IntVar(&c.conc, "c", 8, "concurrent clients")
	fs.IntVar(&c.max, "n", 200_000, "at most this many requests")
	fs.DurationVar(&c.dur, "d", 10*time.Second, "at most this long (max 2m)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop at this many requests/s (0: closed loop, as fast as answered)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	b, err := os.ReadFile(*seedFile)
	if err != nil {
		return fmt.Errorf("read seed: %w", err)
	}
	if err := json.Unmarshal(b, &c.seed); err != nil {
		return fmt.Errorf("read seed: %w", err)
	}
	res, err := load(ctx, c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, res)
	return err
}

// check bounds the run and keeps it on loopback.
func (c loadConfig) check() error {
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "http" {
		return errors.New("--url must be an http:// URL")
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("--url must be on loopback: the load generator sends traffic nowhere else")
	}
	if c.conc < 1 || c.conc > 256 || c.max < 1 || c.max > 2_000_000 || c.dur <= 0 || c.dur > 2*time.Minute {
		return errors.New("bounds: 1 <= -c <= 256, 1 <= -n <= 2000000, 0 < -d <= 2m")
	}
	return nil
}

// target returns the URL and Authorization header the run sends.
func (c loadConfig) target(ctx context.Context, client *http.Client) (string, string, error) {
	t := c.seed.Kapgw
	if c.server == "peer" {
		t = c.seed.Peer
	}
	read, search := t.Paths()
	u := c.base + read
	if c.op == "search" {
		u = c.base + search
	}
	if !c.auth || c.server == "peer" {
		return u, "", nil
	}
	tok, err := token(ctx, client, c.base, c.seed)
	return u, "Bearer " + tok, err
}

// token gets an access token for the seed's partner client from the token
// endpoint of the gateway at base.
func token(ctx context.Context, client *http.Client, base string, s Seed) (string, error) {
	pemBytes, err := os.ReadFile(s.KeyFile)
	if err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return "", errors.New("key file holds no PEM block")
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("parse key: %w", err)
	}
	u, _ := url.Parse(base)
	tokenURL := u.Scheme + "://" + u.Host + "/auth/token"
	a, err := auth.SignAssertion(key, "k1", s.ClientID, tokenURL, time.Now(), 4*time.Minute)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.AssertionTypeJWTBearer},
		"client_assertion": {a}, "scope": {"system/*.rs"}}
	resp, err := client.PostForm(tokenURL, form)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token: status %d", resp.StatusCode)
	}
	return out.AccessToken, nil
}

// Result is what a run measured.
type Result struct {
	Server, Op               string
	Bare, BareProcess        bool
	Conc                     int
	Rate                     float64
	Requests, Errors, Non2xx int
	Elapsed                  time.Duration
	RPS                      float64
	P50, P99                 time.Duration
	ResponseBytes            int
}

func (r Result) String() string {
	what := r.Server
	if r.Bare {
		what = "bare(" + r.Server + ")"
		if r.BareProcess {
			what = "bare-process(" + r.Server + ")"
		}
	}
	return fmt.Sprintf("server=%s op=%s c=%d rate=%.0f requests=%d errors=%d non2xx=%d bytes=%d rps=%.0f p50=%s p99=%s",
		what, r.Op, r.Conc, r.Rate, r.Requests, r.Errors, r.Non2xx, r.ResponseBytes, r.RPS,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
}

// load runs the requests and measures them.
func load(ctx context.Context, c loadConfig) (Result, error) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.conc + 4}}
	u, authz, err := c.target(ctx, client)
	if err != nil {
		return Result{}, err
	}
	res := Result{Server: c.server, Op: c.op, Bare: c.bare, BareProcess: c.bare && c.bareProcess, Conc: c.conc, Rate: c.rate}
	body, status, err := get(client, u, authz)
	if err != nil || status != http.StatusOK {
		return res, fmt.Errorf("first GET %s: %d %v: %.300s", u, status, err, body)
	}
	res.ResponseBytes = len(body)
	if c.bare {
		serve := serveBare
		if c.bareProcess {
			serve = serveBareProcess
		}
		stop, bareURL, err := serve(body)
		if err != nil {
			return res, err
		}
		defer stop()
		u, authz = bareURL, ""
	}
	ctx, cancel := context.WithTimeout(ctx, c.dur)
	defer cancel()
	starts := schedule(ctx, c)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	begin := time.Now()
	for range c.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var errs, bad int
			for at := range starts {
				if c.rate <= 0 {
					// Closed loop: the start handed out may have waited in
					// the channel while this client's last request ran;
					// the request starts now.
					at = time.Now()
				}
				_, st, err := get(client, u, authz)
				switch {
				case err != nil:
					errs++
				case st != http.StatusOK:
					bad++
				default:
					mine = append(mine, time.Since(at))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.Errors += errs
			res.Non2xx += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	res.Requests = len(lat) + res.Errors + res.Non2xx
	res.RPS = float64(len(lat)) / res.Elapsed.Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res, nil
}

// schedule yields the intended start time of each request: at once for a
// closed loop, every 1/rate for an open one (latency is then measured from
// the intended start, so queueing behind a slow server counts).
func schedule(ctx context.Context, c loadConfig) <-chan time.Time {
	out := make(chan time.Time, c.conc)
	go func() {
		defer close(out)
		var every time.Duration
		if c.rate > 0 {
			every = time.Duration(float64(time.Second) / c.rate)
		}
		next := time.Now()
		for range c.max {
			if every > 0 {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
			} else {
				next = time.Now()
			}
			select {
			case out <- next:
			case <-ctx.Done():
				return
			}
			next = next.Add(every)
		}
	}()
	return out
}

// get sends one GET and reads the whole response.
func get(client *http.Client, u, authz string) ([]byte, int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return b, resp.StatusCode, err
}
