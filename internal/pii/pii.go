// Package pii protects personal data at rest: phone numbers and similar are
// stored encrypted (AES-256-GCM) beside a keyed blind index (HMAC-SHA256) that
// lets Siyu find a customer by exact value without storing the value in clear.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keyring holds the keys derived from the workspace-independent master key.
type Keyring struct {
	aead  cipher.AEAD
	index []byte
}

// NewKeyring derives the encryption and index keys from a 32-byte master key.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("pii: master key must be 32 bytes, got %d", len(master))
	}
	enc, err := hkdf.Key(sha256.New, master, nil, "siyu pii encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("pii: derive key: %w", err)
	}
	idx, err := hkdf.Key(sha256.New, master, nil, "siyu pii blind index v1", 32)
	if err != nil {
		return nil, fmt.Errorf("pii: derive key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("pii: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pii: gcm: %w", err)
	}
	return &Keyring{aead: aead, index: idx}, nil
}

// LoadOrCreateKeyFile reads a hex master key from path, creating the file
// (mode 0600) with a new random key when it does not exist.
func LoadOrCreateKeyFile(path string) (k *Keyring, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		master := make([]byte, 32)
		if _, err := rand.Read(master); err != nil {
			return nil, false, fmt.Errorf("pii: random key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, false, fmt.Errorf("pii: create key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("pii: create key file %s: %w", path, err)
		}
		if _, err := f.WriteString(hex.EncodeToString(master) + "\n"); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("pii: write key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("pii: write key file: %w", err)
		}
		k, err := NewKeyring(master)
		return k, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("pii: read key file %s: %w", path, err)
	}
	master, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, false, fmt.Errorf("pii: key file %s is not 64 hex characters", path)
	}
	k, err = NewKeyring(master)
	return k, false, err
}

// Encrypt seals plaintext; the empty string stays empty.
func (k *Keyring) Encrypt(plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("pii: nonce: %w", err)
	}
	sealed := k.aead.Seal(nonce, nonce, []byte(plain), nil)
	return "v1:" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Decrypt opens a value made by Encrypt.
func (k *Keyring) Decrypt(stored string) (string, error) {
	if stored == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(stored, "v1:")
	if !ok {
		return "", errors.New("pii: unknown ciphertext version")
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < k.aead.NonceSize() {
		return "", errors.New("pii: malformed ciphertext")
	}
	n := k.aead.NonceSize()
	out, err := k.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errors.New("pii: ciphertext does not open with this key (wrong secret key file?)")
	}
	return string(out), nil
}

// Index returns the blind index of a normalised value: equal values give equal
// indexes, and the index reveals nothing without the key.
func (k *Keyring) Index(kind, value string) string {
	m := hmac.New(sha256.New, k.index)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// MaskPhone shows a phone number as operators expect (138****5678); the +86
// prefix is dropped for mainland numbers.
func MaskPhone(e164 string) string {
	s := strings.TrimPrefix(e164, "+86")
	r := []rune(s)
	if len(r) < 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + "****" + string(r[len(r)-4:])
}
