package clustertls

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
)

// side is what one end of a handshake saw.
type side struct {
	state tls.ConnectionState
	err   error
}

// handshake connects a client with config client to a server with config
// server over loopback TCP and returns what each saw. A side succeeds only
// when the handshake completed on both ends: the server then sends one
// byte, which the client must read (in TLS 1.3 the client finishes its
// handshake before the server has judged the client's certificate).
func handshake(t *testing.T, server, client *tls.Config) (srv, cli side) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan side, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- side{err: err}
			return
		}
		_, err = tc.Write([]byte{1})
		done <- side{state: tc.ConnectionState(), err: err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, client)
	err = tc.Handshake()
	if err == nil {
		var b [1]byte
		_, err = io.ReadFull(tc, b[:])
	}
	cli = side{state: tc.ConnectionState(), err: err}
	tc.Close()
	return <-done, cli
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "c1")
	a := newTestNode(t, ca, "node-a")
	b := newTestNode(t, ca, "node-b")
	srv, cli := handshake(t, a.ServerTLS(), b.ClientTLS())
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	if v := cli.state.Version; v != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", v)
	}
	if got, err := a.PeerNodeID(srv.state); got != "node-b" || err != nil {
		t.Errorf("server sees peer %q, %v; want node-b", got, err)
	}
	if got, err := b.PeerNodeID(cli.state); got != "node-a" || err != nil {
		t.Errorf("client sees peer %q, %v; want node-a", got, err)
	}
	// A third node judges a connection it did not make by the same CA.
	c := newTestNode(t, ca, "node-c")
	if got, err := c.PeerNodeID(srv.state); got != "node-b" || err != nil {
		t.Errorf("node-c sees peer %q, %v; want node-b", got, err)
	}
	foreign := newTestNode(t, newTestCA(t, "c2"), "node-x")
	if _, err := foreign.PeerNodeID(srv.state); !errors.Is(err, ErrUntrustedPeer) {
		t.Errorf("a node of another CA accepts the peer: %v", err)
	}
	if _, err := a.PeerNodeID(tls.ConnectionState{}); !errors.Is(err, ErrUntrustedPeer) {
		t.Errorf("PeerNodeID before the handshake = %v, want ErrUntrustedPeer", err)
	}
}

// TestRefusals has the server or the client refuse a peer that is not a
// member. want names the side that must refuse with ErrUntrustedPeer; the
// other side must fail too.
func TestRefusals(t *testing.T) {
	ca := newTestCA(t, "c1")
	member := newTestNode(t, ca, "node-a")
	foreign := newTestNode(t, newTestCA(t, "c2"), "node-b")
	// Trusts the cluster CA but shows a certificate of another CA.
	impostor := &Identity{CA: ca.Cert, Cert: foreign.Cert, NodeID: "node-b", Now: clockAt(testNow)}
	// Trusts the cluster CA but shows a self-signed certificate shaped like
	// a node's.
	selfSigned := &Identity{CA: ca.Cert, Cert: selfSignedLeaf(t, "node-c"), NodeID: "node-c", Now: clockAt(testNow)}
	// Holds the CA key, as members that admit nodes do, and shows the CA
	// certificate itself.
	caHolder := &Identity{CA: ca.Cert, Cert: tls.Certificate{Certificate: [][]byte{ca.CertDER}, PrivateKey: ca.Key}, Now: clockAt(testNow)}
	// A member whose clock is past its peers' certificates.
	late := newTestNode(t, ca, "node-d")
	late.Now = clockAt(testNow.AddDate(11, 0, 0))
	// A member whose clock is before its peers' certificates.
	early := newTestNode(t, ca, "node-e")
	early.Now = clockAt(testNow.AddDate(0, 0, -1))

	noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	tls12 := member.ClientTLS()
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	const (
		server = "server"
		client = "client"
	)
	tests := []struct {
		name           string
		server, client *tls.Config
		want           string // side that refuses with ErrUntrustedPeer, or "" for any refusal
	}{
		{"client of another CA", member.ServerTLS(), impostor.ClientTLS(), server},
		{"server of another CA", impostor.ServerTLS(), member.ClientTLS(), client},
		{"node of another CA dials", member.ServerTLS(), foreign.ClientTLS(), client},
		{"node of another CA answers", foreign.ServerTLS(), member.ClientTLS(), client},
		{"client with a self-signed certificate", member.ServerTLS(), selfSigned.ClientTLS(), server},
		{"server with a self-signed certificate", selfSigned.ServerTLS(), member.ClientTLS(), client},
		{"client showing the CA certificate", member.ServerTLS(), caHolder.ClientTLS(), server},
		{"server showing the CA certificate", caHolder.ServerTLS(), member.ClientTLS(), client},
		{"server past the client's certificate", late.ServerTLS(), member.ClientTLS(), server},
		{"client before the server's certificate", member.ServerTLS(), early.ClientTLS(), client},
		{"client with no certificate", member.ServerTLS(), noCert, ""},
		{"client with TLS 1.2 only", member.ServerTLS(), tls12, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := handshake(t, tt.server, tt.client)
			if srv.err == nil || cli.err == nil {
				t.Fatalf("connection not refused: server %v, client %v", srv.err, cli.err)
			}
			t.Logf("server: %v; client: %v", srv.err, cli.err)
			switch tt.want {
			case server:
				if !errors.Is(srv.err, ErrUntrustedPeer) {
					t.Errorf("server: %v, want ErrUntrustedPeer", srv.err)
				}
			case client:
				if !errors.Is(cli.err, ErrUntrustedPeer) {
					t.Errorf("client: %v, want ErrUntrustedPeer", cli.err)
				}
			}
		})
	}
}

// selfSignedLeaf makes a certificate that looks like a node certificate
// but signs itself.
func selfSignedLeaf(t *testing.T, nodeID string) tls.Certificate {
	t.Helper()
	key := mustNodeKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{NodeDNSName(nodeID)},
		NotBefore:    testNow.AddDate(0, 0, -1),
		NotAfter:     testNow.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestPeerNeedsTheRightUsage(t *testing.T) {
	ca := newTestCA(t, "c1")
	member := newTestNode(t, ca, "node-a")
	// A certificate of the cluster CA for server authentication only: a
	// server may show it, a client may not.
	key := mustNodeKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9),
		Subject:      pkix.Name{CommonName: "node-s"},
		DNSNames:     []string{NodeDNSName("node-s")},
		NotBefore:    testNow.AddDate(0, 0, -1),
		NotAfter:     testNow.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewIdentity(ca.CertDER, der, key); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("NewIdentity of a server-only certificate = %v, want ErrBadIdentity", err)
	}
	serverOnly := &Identity{CA: ca.Cert, Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, Now: clockAt(testNow)}
	srv, cli := handshake(t, member.ServerTLS(), serverOnly.ClientTLS())
	if !errors.Is(srv.err, ErrUntrustedPeer) || cli.err == nil {
		t.Errorf("server-only certificate as client: server %v, client %v; want refused", srv.err, cli.err)
	}
}
