// k2-loadgen: the closed-loop client of K2's single-item benchmark (bench/api-ingest.ts).
//
// Why a separate program in Go: the benchmark runs on the same 2 cores as the system it measures.
// The Node.js client spends about 0.35 ms of CPU per request, a third of a core at 1,800 requests/s,
// taken from the API and Temporal while they are being measured; this client spends a fraction of
// that. It only sends and times: the bodies, the URL and the number of clients come from the
// benchmark, the latencies go back to it, and the statistics are computed there, as for every run.
//
// Input: a file of request bodies, one JSON document per line. Each body is sent once, by one of
// -clients workers that each send their next body as soon as the previous answer is read (closed
// loop, no think time). Output (stdout, JSON): each request's latency in ms, in body order, and how
// many answers were not HTTP 200 with "error_code": 0.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	LatenciesMs []float64 `json:"latenciesMs"`
	NonZero     int64     `json:"nonZero"`
	WallMs      float64   `json:"wallMs"`
	CPUSeconds  float64   `json:"cpuSeconds"` // this client's own CPU (user + system), for the report's CPU table
	FirstError  string    `json:"firstError,omitempty"`
}

func main() {
	url := flag.String("url", "", "the endpoint to POST to")
	bodiesPath := flag.String("bodies", "", "file of request bodies, one per line")
	clients := flag.Int("clients", 50, "concurrent closed-loop clients")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	flag.Parse()
	if *url == "" || *bodiesPath == "" || *clients < 1 {
		fmt.Fprintln(os.Stderr, "usage: k2-loadgen -url URL -bodies FILE [-clients N] [-timeout D]")
		os.Exit(2)
	}
	bodies, err := readLines(*bodiesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k2-loadgen:", err)
		os.Exit(1)
	}

	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{MaxIdleConns: *clients, MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients, DisableCompression: true},
	}
	latencies := make([]float64, len(bodies))
	var next, nonZero int64 = -1, 0
	var firstError atomic.Value
	var wg sync.WaitGroup
	started := time.Now()
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(len(bodies)) {
					return
				}
				t := time.Now()
				ok, err := post(client, *url, bodies[i])
				latencies[i] = float64(time.Since(t).Nanoseconds()) / 1e6
				if !ok {
					atomic.AddInt64(&nonZero, 1)
					if err != nil {
						firstError.CompareAndSwap(nil, err.Error())
					}
				}
			}
		}()
	}
	wg.Wait()
	out := result{LatenciesMs: latencies, NonZero: nonZero, WallMs: float64(time.Since(started).Nanoseconds()) / 1e6}
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) == nil {
		out.CPUSeconds = float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
	}
	if e, ok := firstError.Load().(string); ok {
		out.FirstError = e
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "k2-loadgen:", err)
		os.Exit(1)
	}
}

// post sends one body and reads the whole answer; ok means HTTP 200 with error_code 0.
func post(client *http.Client, url string, body []byte) (bool, error) {
	res, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return false, err
	}
	var answer struct {
		ErrorCode *int `json:"error_code"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(data, &answer) != nil || answer.ErrorCode == nil || *answer.ErrorCode != 0 {
		return false, fmt.Errorf("HTTP %d: %.200s", res.StatusCode, data)
	}
	return true, nil
}

func readLines(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
	}
	return lines, sc.Err()
}
