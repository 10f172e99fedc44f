// Command h2srv serves the gateway alone over TLS (a throwaway ECDSA
// P-256 certificate for bench.localhost, h2 and http/1.1 offered) in front
// of one replica, or is that replica (-backend: a 512-byte answer with
// Content-Length, as bench/gateway's backend gives), so that HTTP/2 can be
// profiled and counted with h2load and perf without Docker or aim serve:
//
//	h2srv -backend 127.0.0.1:18080 &
//	h2srv -addr 127.0.0.1:18443 -up 127.0.0.1:18080 -debug 127.0.0.1:16060 &
//	h2load -c4 -m32 -D 10 -H ':authority: bench.localhost' https://127.0.0.1:18443/
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"log"
	"math/big"
	"net"
	"net/http"
	_ "net/http/pprof" // served on -debug only
	"strconv"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/gateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18443", "where to serve HTTPS")
	backend := flag.String("backend", "", "be the replica instead, on this address")
	up := flag.String("up", "127.0.0.1:18080", "the replica's address")
	debug := flag.String("debug", "", "serve pprof at this address")
	flag.Parse()
	if *backend != "" {
		log.Fatal(serveBackend(*backend))
	}
	if *debug != "" {
		go func() { log.Print(http.ListenAndServe(*debug, nil)) }()
	}
	g := gateway.New(gateway.Config{Domain: "localhost"})
	g.Routes.Set(gateway.RouteSpec{Name: "bench", State: gateway.StateReady,
		Upstreams: []gateway.Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{*up}}}})
	cert, err := selfSigned("bench.localhost")
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(gateway.NewServer(g, gateway.ServerConfig{}).ServeTLS(ln, cfg))
}

func serveBackend(addr string) error {
	body := []byte(strings.Repeat("x", 512))
	length := strconv.Itoa(len(body))
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/html; charset=utf-8"}
		w.Header()["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	}))
}

func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
