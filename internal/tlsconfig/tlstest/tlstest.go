// Package tlstest issues throwaway certificates for tests: a CA per test,
// and server and client certificates it signs, in memory or as files.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/internal/tlsconfig"
)

// CA is a certificate authority that lives as long as a test.
type CA struct {
	// Cert is the CA's certificate; PEM the same, PEM-encoded.
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
}

// NewCA generates a CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse CA: %v", err)
	}
	return &CA{Cert: cert, PEM: pemBlock("CERTIFICATE", der), key: key}
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// KeyPair is an issued certificate and its key.
type KeyPair struct {
	// Cert is ready for a tls.Config; CertPEM and KeyPEM are its files'
	// contents.
	Cert            tls.Certificate
	CertPEM, KeyPEM []byte
}

// Server issues a server certificate valid for hosts (DNS names or IP
// addresses; none: localhost, 127.0.0.1 and ::1).
func (ca *CA) Server(t testing.TB, hosts ...string) KeyPair {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	tmpl := ca.leaf(t, hosts[0], x509.ExtKeyUsageServerAuth)
	tlsconfig.AddHosts(tmpl, hosts)
	return ca.issue(t, tmpl)
}

// Client issues a client certificate for mutual TLS, named name.
func (ca *CA) Client(t testing.TB, name string) KeyPair {
	t.Helper()
	return ca.issue(t, ca.leaf(t, name, x509.ExtKeyUsageClientAuth))
}

// Peer issues a certificate valid as a server for hosts and as a client
// (cluster routes use one for both ends).
func (ca *CA) Peer(t testing.TB, hosts ...string) KeyPair {
	t.Helper()
	tmpl := ca.leaf(t, hosts[0], x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	tlsconfig.AddHosts(tmpl, hosts)
	return ca.issue(t, tmpl)
}

// WriteCA writes the CA's certificate into dir as name and returns its
// path.
func (ca *CA) WriteCA(t testing.TB, dir, name string) string {
	t.Helper()
	return write(t, filepath.Join(dir, name), ca.PEM)
}

// Write stores the key pair in dir as <name>-cert.pem and <name>-key.pem
// and returns their paths.
func (kp KeyPair) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return write(t, filepath.Join(dir, name+"-cert.pem"), kp.CertPEM),
		write(t, filepath.Join(dir, name+"-key.pem"), kp.KeyPEM)
}

func (ca *CA) leaf(t testing.TB, name string, usage ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	return &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
	}
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate) KeyPair {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: issue %s: %v", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: encode key: %v", err)
	}
	kp := KeyPair{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}
	if kp.Cert, err = tls.X509KeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
		t.Fatalf("tlstest: key pair: %v", err)
	}
	return kp
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("tlstest: serial: %v", err)
	}
	return n
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func write(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return path
}
