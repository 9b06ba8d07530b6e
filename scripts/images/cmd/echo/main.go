// Command echo is a tiny HTTP server for the end-to-end test: every request is answered with the
// pod's hostname and the request's method and path, so a NodePort test can tell which pod answered.
// It listens on $PORT (default 8080), answers /healthz with "ok", and shuts down on SIGTERM.
//
// "echo get URL" is its client, for NetworkPolicy tests run with kubectl exec (the image has no other
// program): it prints the HTTP status of one GET and exits 0 when any HTTP answer came back (an https
// server's certificate is not checked), or prints the error and exits 1 when none did within 3 seconds.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const version = "1.1"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("echo (k3s-proxmox) " + version)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2]))
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hostname: %s\n", hostname)
		fmt.Fprintf(w, "method: %s\n", r.Method)
		fmt.Fprintf(w, "path: %s\n", r.URL.Path)
		fmt.Fprintf(w, "remote: %s\n", r.RemoteAddr)
		fmt.Fprintf(w, "version: %s\n", version)
	})

	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	log.Printf("echo %s listening on :%s as %s", version, port, hostname)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// get fetches url once: 0 when an HTTP answer came back, 1 when none did.
func get(url string) int {
	client := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // a reachability probe
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Println("no answer:", err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	return 0
}
