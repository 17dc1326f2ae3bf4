package wecom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The seed corpora are in testdata/fuzz/<target>/: the official sample
// ciphertexts and one input for each way a callback can be wrong. Run a
// target with e.g.
//
//	go test -run '^$' -fuzz FuzzDecrypt -fuzztime 20s ./internal/connector/wecom/

// checkCryptError fails unless err is exactly one of the typed errors, the
// only ones Decrypt may return.
func checkCryptError(t *testing.T, err error) {
	t.Helper()
	matched := 0
	for _, want := range []error{ErrSignature, ErrReceiveID, ErrPadding, ErrMalformed} {
		if errors.Is(err, want) {
			matched++
		}
	}
	if matched != 1 {
		t.Fatalf("Decrypt error %v is not exactly one of the typed errors", err)
	}
}

// FuzzDecrypt feeds arbitrary ciphertext and signatures to Decrypt. An empty
// signature stands for the correct one, so the fuzzer gets past the
// signature check and into the decryption.
func FuzzDecrypt(f *testing.F) {
	c := officialCrypt(f)
	f.Fuzz(func(t *testing.T, ciphertext, msgSignature string) {
		valid := c.Signature(officialMsgTimestamp, officialMsgNonce, ciphertext)
		sig := msgSignature
		if sig == "" {
			sig = valid
		}
		msg, err := c.Decrypt(sig, officialMsgTimestamp, officialMsgNonce, ciphertext)
		if err != nil {
			checkCryptError(t, err)
			if msg != nil {
				t.Fatal("Decrypt returned a message with its error")
			}
			if sig == valid && errors.Is(err, ErrSignature) {
				t.Fatalf("the correct signature was rejected: %v", err)
			}
			return
		}
		if !bytes.EqualFold([]byte(sig), []byte(valid)) {
			t.Fatalf("Decrypt accepted signature %q; the correct one is %s", sig, valid)
		}
	})
}

// FuzzDecryptPlaintext encrypts arbitrary bytes as the plaintext (bypassing
// Encrypt's framing), so the fuzzer controls exactly what the padding and
// length checks see after decryption.
func FuzzDecryptPlaintext(f *testing.F) {
	c := officialCrypt(f)
	key := officialKey(f)
	f.Fuzz(func(t *testing.T, plain []byte) {
		plain = plain[:len(plain)/padBlock*padBlock]
		ciphertext := ""
		if len(plain) > 0 {
			ciphertext = sealPlaintext(t, key, plain)
		}
		sig := c.Signature("1", "2", ciphertext)
		msg, err := c.Decrypt(sig, "1", "2", ciphertext)
		if err != nil {
			checkCryptError(t, err)
			if errors.Is(err, ErrSignature) {
				t.Fatalf("the correct signature was rejected: %v", err)
			}
			return
		}
		// Success must mean the plaintext was well formed: consistent
		// padding, a length inside the buffer, and this corp after it.
		pad := int(plain[len(plain)-1])
		body := plain[:len(plain)-pad]
		n := binary.BigEndian.Uint32(body[16:20])
		if !bytes.Equal(msg, body[20:20+n]) || string(body[20+n:]) != officialCorpID {
			t.Fatalf("Decrypt accepted %x as %q", plain, msg)
		}
		for _, b := range plain[len(plain)-pad:] {
			if int(b) != pad {
				t.Fatalf("Decrypt accepted inconsistent padding in %x", plain)
			}
		}
	})
}

// FuzzRoundTrip checks that whatever is encrypted decrypts to itself, bare
// and in both envelopes.
func FuzzRoundTrip(f *testing.F) {
	c := officialCrypt(f)
	f.Fuzz(func(t *testing.T, msg []byte, timestamp, nonce string) {
		ciphertext, sig, err := c.Encrypt(msg, timestamp, nonce)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		got, err := c.Decrypt(sig, timestamp, nonce, ciphertext)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Decrypt(Encrypt(%q)) = %q, %v", msg, got, err)
		}
		if refDecrypt(t, officialEncodingAESKey, officialCorpID, ciphertext) != string(msg) {
			t.Fatalf("the official sample's decryption disagrees for %q", msg)
		}
		for _, format := range []Format{FormatXML, FormatJSON} {
			body, sig, err := c.EncryptEnvelope(msg, "1000002", timestamp, nonce, format)
			if err != nil {
				t.Fatalf("EncryptEnvelope(%s): %v", format, err)
			}
			got, env, err := c.DecryptEnvelope(sig, timestamp, nonce, body)
			if err != nil || !bytes.Equal(got, msg) || env.Format != format || env.ToUserName != officialCorpID {
				t.Fatalf("DecryptEnvelope(%s) of %q = %q, %+v, %v", format, msg, got, env, err)
			}
		}
	})
}
