// Package tlsreload serves a TLS key pair that is read again when its files change.
package tlsreload

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/segmented-registry/token-server/internal/jwt"
)

// KeyPairReloader serves the TLS key pair of two files and reads them again when either file's
// modification time or size changes, so that a renewed serving certificate (OpenShift's service
// CA rewrites the Secret; the kubelet swaps the mounted files) is served without a restart. A
// pair that does not load (the files caught half written, a key that does not match) is logged
// and the pair loaded before stays in use until the files are whole again.
type KeyPairReloader struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // the files' mtimes and sizes when current was read
}

// NewKeyPairReloader loads the pair once: an error here stops the server at start.
func NewKeyPairReloader(certPath, keyPath string, log *slog.Logger) (*KeyPairReloader, error) {
	r := &KeyPairReloader{certPath: certPath, keyPath: keyPath, log: log}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("tls_cert and tls_key (%s, %s): %w", certPath, keyPath, err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls_cert and tls_key (%s, %s): %w", certPath, keyPath, err)
	}
	r.current, r.stamp = &cert, stamp
	return r, nil
}

// GetCertificate is a tls.Config GetCertificate: the current pair, read again first if the files
// changed since it was read.
func (r *KeyPairReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.fileStamp()
	if err != nil || stamp == r.stamp {
		return r.current, nil // a file missing for a moment (a volume swap): keep serving
	}
	cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		r.log.Warn("tls key pair not reloaded, serving the previous one", "tls_cert", r.certPath, "error", err.Error())
		return r.current, nil
	}
	r.current, r.stamp = &cert, stamp
	r.log.Info("tls key pair reloaded", "tls_cert", r.certPath, "not_after", jwt.RFC3339(cert.Leaf.NotAfter))
	return r.current, nil
}

func (r *KeyPairReloader) fileStamp() (string, error) {
	stamp := ""
	for _, path := range []string{r.certPath, r.keyPath} {
		info, err := os.Stat(path) // follows the kubelet's ..data symlinks
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", info.ModTime().UnixNano(), info.Size())
	}
	return stamp, nil
}
