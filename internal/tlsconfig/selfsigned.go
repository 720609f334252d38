package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SelfSignedValidity is how long a generated self-signed certificate is
// valid.
const SelfSignedValidity = 365 * 24 * time.Hour

// renewBefore is how long before its expiry a stored self-signed
// certificate is replaced.
const renewBefore = 30 * 24 * time.Hour

// Files of a stored self-signed certificate in its folder.
const (
	SelfSignedCertFile = "tls-self-signed-cert.pem"
	SelfSignedKeyFile  = "tls-self-signed-key.pem"
)

// devHosts are the names every self-signed certificate is valid for.
var devHosts = []string{"localhost", "127.0.0.1", "::1"}

// SelfSignedHosts are the names a self-signed certificate for a listener
// bound to host is valid for: localhost, 127.0.0.1, ::1, and host unless it
// is empty or unspecified (0.0.0.0, ::).
func SelfSignedHosts(host string) []string {
	hosts := slices.Clone(devHosts)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() || slices.Contains(hosts, host) {
		return hosts
	}
	return append(hosts, host)
}

// SelfSigned generates an ECDSA P-256 certificate, valid for hosts (DNS
// names or IP addresses) from now for validity, signed by its own key. It
// returns the certificate and the key, PEM-encoded.
func SelfSigned(hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"tradex development"}, CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, // not a CA: Firefox refuses a CA certificate as a server's
	}
	AddHosts(tmpl, hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// AddHosts puts hosts in a certificate template's subject alternative
// names: IP addresses as such, anything else as a DNS name.
func AddHosts(tmpl *x509.Certificate, hosts []string) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

// EnsureSelfSigned returns the self-signed certificate kept in dir for
// hosts, generating (and storing: the key readable by its owner only) a
// new one when there is none, it does not cover every host, or it expires
// within 30 days. Keeping it lets a browser's exception survive restarts.
// generated reports whether it is new.
func EnsureSelfSigned(dir string, hosts []string, now time.Time) (cert tls.Certificate, generated bool, err error) {
	certFile, keyFile := filepath.Join(dir, SelfSignedCertFile), filepath.Join(dir, SelfSignedKeyFile)
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case err == nil && covers(cert.Leaf, hosts) && now.Add(renewBefore).Before(cert.Leaf.NotAfter):
		return cert, false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return tls.Certificate{}, false, fmt.Errorf("self-signed certificate in %s: %w", dir, err)
	}
	certPEM, keyPEM, err := SelfSigned(hosts, now, SelfSignedValidity)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFiles(dir, certFile, certPEM, keyFile, keyPEM); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("self-signed certificate: %w", err)
	}
	return cert, true, nil
}

// covers reports whether leaf is valid for every one of hosts.
func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if leaf == nil || leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// writeFiles stores a certificate (0644) and its key (0600) in dir.
func writeFiles(dir, certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("self-signed certificate: write key: %w", err)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil { //nolint:gosec // a certificate is public
		return fmt.Errorf("self-signed certificate: write certificate: %w", err)
	}
	return nil
}

// Fingerprint is the SHA-256 fingerprint of a certificate as browsers show
// it: upper-case hex bytes separated by colons.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
