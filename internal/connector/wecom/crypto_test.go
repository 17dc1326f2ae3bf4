package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/errs"
)

// Tencent's official WXBizMsgCrypt sample values. They appear identically in
// the samples of every language Tencent publishes, e.g.
// github.com/sbzhu/weworkapi_golang sample.go (verify-URL and decrypt
// examples), and in the 企业微信 doc "加解密方案说明"
// (developer.work.weixin.qq.com/document/path/90968), which also gives the
// decrypted message. The echostr's plaintext, 1616140317555161061, is what
// the samples print for it.
const (
	officialToken          = "QDG6eK"
	officialEncodingAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	officialCorpID         = "wx5823bf96d3bd56c7"

	officialVerifySignature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	officialVerifyTimestamp = "1409659589"
	officialVerifyNonce     = "263014780"
	officialVerifyEchoStr   = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	officialVerifyPlaintext = "1616140317555161061"

	officialMsgSignature = "477715d11cdb4164915debcba66cb864d751f3e6"
	officialMsgTimestamp = "1409659813"
	officialMsgNonce     = "1372623149"
	officialMsgEncrypt   = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
	// officialMsgBody is the POST body of the sample (sample.go, 示例二).
	officialMsgBody = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" + officialMsgEncrypt + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
	// officialMsgPlaintext is the message inside, as the doc shows it
	// (indented there; these are the exact bytes, newline-separated).
	officialMsgPlaintext = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n" +
		"<FromUserName><![CDATA[mycreate]]></FromUserName>\n" +
		"<CreateTime>1409659813</CreateTime>\n" +
		"<MsgType><![CDATA[text]]></MsgType>\n" +
		"<Content><![CDATA[hello]]></Content>\n" +
		"<MsgId>4561255354251345929</MsgId>\n" +
		"<AgentID>218</AgentID>\n" +
		"</xml>"
)

func officialCrypt(t testing.TB) *Crypt {
	t.Helper()
	c, err := NewCrypt(officialToken, officialEncodingAESKey, officialCorpID)
	if err != nil {
		t.Fatalf("NewCrypt with the official sample's settings: %v", err)
	}
	return c
}

// officialKey is the AES key, decoded independently of decodeAESKey.
func officialKey(t testing.TB) []byte {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(officialEncodingAESKey + "=")
	if err != nil || len(key) != 32 {
		t.Fatalf("decoding the official key: %v (%d bytes)", err, len(key))
	}
	return key
}

// refEncrypt is the encryption of Tencent's official Go sample
// (github.com/sbzhu/weworkapi_golang, wxbizmsgcrypt.go: EncryptMsg,
// cbcEncrypter, pKCS7Padding, calSignature), ported as an independent
// reference: it shares no code with crypto.go.
func refEncrypt(token, encodingAESKey, receiverID, random, replyMsg, timestamp, nonce string) (ciphertext, signature string) {
	var buf bytes.Buffer
	buf.WriteString(random)
	lenBuf := make([]byte, 4)
	binary.BigEndian.PutUint32(lenBuf, uint32(len(replyMsg)))
	buf.Write(lenBuf)
	buf.WriteString(replyMsg)
	buf.WriteString(receiverID)

	aeskey, _ := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	const blockSize = 32
	plaintext := buf.Bytes()
	padding := blockSize - len(plaintext)%blockSize
	plaintext = append(plaintext, bytes.Repeat([]byte{byte(padding)}, padding)...)
	block, _ := aes.NewCipher(aeskey)
	out := make([]byte, len(plaintext))
	cipher.NewCBCEncrypter(block, aeskey[:aes.BlockSize]).CryptBlocks(out, plaintext)
	ciphertext = base64.StdEncoding.EncodeToString(out)

	parts := []string{token, timestamp, nonce, ciphertext}
	sort.Strings(parts)
	signature = fmt.Sprintf("%x", sha1.Sum([]byte(strings.Join(parts, ""))))
	return ciphertext, signature
}

// refDecrypt is the decryption of the same official sample (DecryptMsg,
// cbcDecrypter, ParsePlainText), which trusts the last byte as the padding
// length and checks the receiver ID.
func refDecrypt(t testing.TB, encodingAESKey, receiverID, ciphertext string) string {
	t.Helper()
	aeskey, _ := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	msg, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil || len(msg)%aes.BlockSize != 0 || len(msg) == 0 {
		t.Fatalf("reference decrypt: bad ciphertext (%v, %d bytes)", err, len(msg))
	}
	block, _ := aes.NewCipher(aeskey)
	cipher.NewCBCDecrypter(block, aeskey[:aes.BlockSize]).CryptBlocks(msg, msg)
	if len(msg)%32 != 0 {
		t.Fatalf("reference decrypt: %d bytes is not a multiple of 32", len(msg))
	}
	msg = msg[:len(msg)-int(msg[len(msg)-1])]
	if len(msg) < 20 {
		t.Fatalf("reference decrypt: plaintext too small")
	}
	n := binary.BigEndian.Uint32(msg[16:20])
	if uint32(len(msg)) < 20+n {
		t.Fatalf("reference decrypt: plaintext too small for %d", n)
	}
	if got := string(msg[20+n:]); got != receiverID {
		t.Fatalf("reference decrypt: receiver %q, want %q", got, receiverID)
	}
	return string(msg[20 : 20+n])
}

// sealPlaintext encrypts an arbitrary (already padded or deliberately
// misformed) plaintext with the key, so tests can hand Decrypt bytes that
// Encrypt would never produce.
func sealPlaintext(t testing.TB, key, plain []byte) string {
	t.Helper()
	if len(plain)%aes.BlockSize != 0 {
		t.Fatalf("sealPlaintext: %d bytes is not whole AES blocks", len(plain))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// framePlaintext builds random ‖ length ‖ msg ‖ receiveID with correct
// padding; tests then break one part.
func framePlaintext(msgLen uint32, msg, receiveID string) []byte {
	b := make([]byte, 16, 64)
	for i := range b {
		b[i] = byte('a' + i)
	}
	b = binary.BigEndian.AppendUint32(b, msgLen)
	b = append(b, msg...)
	b = append(b, receiveID...)
	pad := 32 - len(b)%32
	return append(b, bytes.Repeat([]byte{byte(pad)}, pad)...)
}

func TestOfficialVerifyURL(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	got, err := c.VerifyURL(officialVerifySignature, officialVerifyTimestamp, officialVerifyNonce, officialVerifyEchoStr)
	if err != nil {
		t.Fatalf("VerifyURL(official sample): %v", err)
	}
	if string(got) != officialVerifyPlaintext {
		t.Fatalf("VerifyURL(official sample) = %q, want %q", got, officialVerifyPlaintext)
	}

	// WeCom sends echostr percent-encoded in the query; decoding it as the
	// HTTP layer will gives the same result.
	raw := "msg_signature=" + officialVerifySignature + "&timestamp=" + officialVerifyTimestamp +
		"&nonce=" + officialVerifyNonce +
		"&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(v)
	if err != nil {
		t.Fatalf("ParseQuery(official GET): %v", err)
	}
	got, err = c.VerifyURL(q.MsgSignature, q.Timestamp, q.Nonce, q.EchoStr)
	if err != nil || string(got) != officialVerifyPlaintext {
		t.Fatalf("VerifyURL(official GET query) = %q, %v", got, err)
	}
}

func TestOfficialDecrypt(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	if sig := c.Signature(officialMsgTimestamp, officialMsgNonce, officialMsgEncrypt); sig != officialMsgSignature {
		t.Fatalf("Signature(official sample) = %s, want %s", sig, officialMsgSignature)
	}
	got, err := c.Decrypt(officialMsgSignature, officialMsgTimestamp, officialMsgNonce, officialMsgEncrypt)
	if err != nil {
		t.Fatalf("Decrypt(official sample): %v", err)
	}
	if string(got) != officialMsgPlaintext {
		t.Fatalf("Decrypt(official sample) =\n%s\nwant\n%s", got, officialMsgPlaintext)
	}

	msg, env, err := c.DecryptEnvelope(officialMsgSignature, officialMsgTimestamp, officialMsgNonce, []byte(officialMsgBody))
	if err != nil {
		t.Fatalf("DecryptEnvelope(official body): %v", err)
	}
	wantEnv := Envelope{ToUserName: officialCorpID, AgentID: "218", Encrypt: officialMsgEncrypt, Format: FormatXML}
	if env != wantEnv {
		t.Errorf("envelope = %+v, want %+v", env, wantEnv)
	}
	if string(msg) != officialMsgPlaintext {
		t.Errorf("DecryptEnvelope message = %q", msg)
	}

	// The message itself is a text message, which parses but is not an
	// event the connector knows.
	ev, err := ParseEvent(msg)
	if err != nil {
		t.Fatalf("ParseEvent(official message): %v", err)
	}
	if ev.MsgType != "text" || ev.MsgID != "4561255354251345929" || ev.AgentID != "218" ||
		ev.CreateTime != 1409659813 || ev.FromUserName != "mycreate" || ev.ToUserName != officialCorpID {
		t.Errorf("ParseEvent(official message) = %+v", ev)
	}
	if ev.Kind() != "text" || ev.Kind().Known() {
		t.Errorf("Kind = %q (known %v), want unknown text", ev.Kind(), ev.Kind().Known())
	}
}

// TestEncryptMatchesOfficialCiphertext reproduces the official sample's
// ciphertext byte for byte: given the random prefix Tencent used (read from
// the ciphertext), Encrypt must produce the same Encrypt value and
// msg_signature.
func TestEncryptMatchesOfficialCiphertext(t *testing.T) {
	t.Parallel()
	key := officialKey(t)
	raw, err := base64.StdEncoding.DecodeString(officialMsgEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	first := make([]byte, aes.BlockSize)
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(first, raw[:aes.BlockSize])

	c := officialCrypt(t).WithRandom(bytes.NewReader(first))
	ciphertext, sig, err := c.Encrypt([]byte(officialMsgPlaintext), officialMsgTimestamp, officialMsgNonce)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if ciphertext != officialMsgEncrypt {
		t.Errorf("Encrypt ciphertext =\n%s\nwant the official\n%s", ciphertext, officialMsgEncrypt)
	}
	if sig != officialMsgSignature {
		t.Errorf("Encrypt signature = %s, want %s", sig, officialMsgSignature)
	}
}

// TestReferenceInterop checks both directions against the port of the
// official sample, for message lengths around every padding boundary.
func TestReferenceInterop(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 130 {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.IntN(256))
		}
		random := fmt.Sprintf("%016d", n) // the official sample uses 16 letters/digits
		ts, nonce := fmt.Sprint(1700000000+n), fmt.Sprint(n*7919)

		// Official → Siyu.
		refCT, refSig := refEncrypt(officialToken, officialEncodingAESKey, officialCorpID, random, string(msg), ts, nonce)
		got, err := c.Decrypt(refSig, ts, nonce, refCT)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: Decrypt(reference ciphertext) = %x, %v; want %x", n, got, err, msg)
		}

		// Siyu → official, and identical bytes for the same random prefix.
		ct, sig, err := c.WithRandom(strings.NewReader(random)).Encrypt(msg, ts, nonce)
		if err != nil {
			t.Fatalf("len %d: Encrypt: %v", n, err)
		}
		if ct != refCT || sig != refSig {
			t.Fatalf("len %d: Encrypt differs from the reference:\n%s %s\n%s %s", n, ct, sig, refCT, refSig)
		}
		if back := refDecrypt(t, officialEncodingAESKey, officialCorpID, ct); back != string(msg) {
			t.Fatalf("len %d: reference decrypt of Encrypt = %x, want %x", n, back, msg)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c, err := NewCrypt("Tok3n", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "ww0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("客户", 5000)
	for _, msg := range []string{
		"",
		"x",
		strings.Repeat("a", 64-20-len("ww0123456789abcdef")), // header+msg+id exactly two blocks: a full pad block follows
		"<xml><Event><![CDATA[change_external_contact]]></Event></xml>",
		`{"MsgType":"event","Event":"change_external_chat"}`,
		long,
		"\x00\x01\xff binary ]]> and CDATA's end",
	} {
		ct, sig, err := c.Encrypt([]byte(msg), "1700000000", "nonce")
		if err != nil {
			t.Fatalf("Encrypt(%.20q): %v", msg, err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(ct); len(raw)%32 != 0 {
			t.Errorf("Encrypt(%.20q): %d bytes, not whole 32-byte blocks", msg, len(raw))
		}
		got, err := c.Decrypt(sig, "1700000000", "nonce", ct)
		if err != nil || string(got) != msg {
			t.Fatalf("Decrypt(Encrypt(%.20q)) = %.20q, %v", msg, got, err)
		}
		for _, format := range []Format{FormatXML, FormatJSON} {
			body, sig, err := c.EncryptEnvelope([]byte(msg), "1000002", "1700000001", "n2", format)
			if err != nil {
				t.Fatalf("EncryptEnvelope(%s): %v", format, err)
			}
			got, env, err := c.DecryptEnvelope(sig, "1700000001", "n2", body)
			if err != nil || string(got) != msg {
				t.Fatalf("DecryptEnvelope(%s, %s) = %.20q, %v", format, body, got, err)
			}
			if env.ToUserName != "ww0123456789abcdef" || env.AgentID != "1000002" || env.Format != format {
				t.Errorf("envelope %s = %+v", format, env)
			}
		}
	}

	// The random prefix makes each encryption different.
	a, _, _ := c.Encrypt([]byte("same"), "1", "n")
	b, _, _ := c.Encrypt([]byte("same"), "1", "n")
	if a == b {
		t.Error("two encryptions of the same message are identical: the random prefix is not random")
	}
}

func TestEnvelopeFormats(t *testing.T) {
	t.Parallel()
	env := Envelope{ToUserName: "wwcorp", AgentID: "1000002", Encrypt: "QUJD+/==", Format: FormatXML}
	if got, want := string(env.Marshal()),
		"<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><Encrypt><![CDATA[QUJD+/==]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"; got != want {
		t.Errorf("XML envelope = %s, want %s", got, want)
	}
	env.Format = FormatJSON
	if got, want := string(env.Marshal()), `{"tousername":"wwcorp","encrypt":"QUJD+/==","agentid":"1000002"}`; got != want {
		t.Errorf("JSON envelope = %s, want %s", got, want)
	}

	for _, tc := range []struct {
		name, body string
		want       Envelope
	}{
		{"xml without CDATA, with spaces", "\n <xml>\n<ToUserName>wwcorp</ToUserName>\n<Encrypt> QUJD </Encrypt>\n</xml>",
			Envelope{ToUserName: "wwcorp", Encrypt: "QUJD", Format: FormatXML}},
		{"xml with a byte-order mark", "\ufeff<xml><Encrypt><![CDATA[QUJD]]></Encrypt><AgentID>7</AgentID></xml>",
			Envelope{Encrypt: "QUJD", AgentID: "7", Format: FormatXML}},
		{"json with a numeric agentid", `{"tousername":"wwcorp","encrypt":"QUJD","agentid":1000002}`,
			Envelope{ToUserName: "wwcorp", Encrypt: "QUJD", AgentID: "1000002", Format: FormatJSON}},
		{"json in WeCom's capitalisation", `{"ToUserName":"wwcorp","Encrypt":"QUJD","AgentID":"5"}`,
			Envelope{ToUserName: "wwcorp", Encrypt: "QUJD", AgentID: "5", Format: FormatJSON}},
	} {
		got, err := ParseEnvelope([]byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%s: ParseEnvelope = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}

	for _, body := range []string{
		"",
		"success",
		"<xml><ToUserName>wwcorp</ToUserName></xml>", // no Encrypt
		"<xml><Encrypt>QUJD</Encrypt>",               // unterminated
		"<other><Encrypt>QUJD</Encrypt></other>",     // not WeCom's root
		`{"encrypt":""}`,
		`{"encrypt":`,
		`[1,2]`,
	} {
		if _, err := ParseEnvelope([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseEnvelope(%q) = %v, want ErrMalformed", body, err)
		}
	}
}

func TestQuery(t *testing.T) {
	t.Parallel()
	q := Query{MsgSignature: "abc", Timestamp: "1", Nonce: "n", EchoStr: "a+b/c=="}
	encoded := q.Values().Encode()
	if !strings.Contains(encoded, "echostr=a%2Bb%2Fc%3D%3D") {
		t.Errorf("echostr not percent-encoded: %s", encoded)
	}
	v, _ := url.ParseQuery(encoded)
	if got, err := ParseQuery(v); err != nil || got != q {
		t.Errorf("ParseQuery(Values()) = %+v, %v; want %+v", got, err, q)
	}
	if v := (Query{MsgSignature: "s", Timestamp: "1", Nonce: "n"}).Values(); v.Has("echostr") {
		t.Errorf("POST query has an echostr: %v", v)
	}
	_, err := ParseQuery(url.Values{"timestamp": {"1"}})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "msg_signature, nonce") {
		t.Errorf("ParseQuery(missing) = %v, want ErrMalformed naming msg_signature and nonce", err)
	}
}

// TestDecryptRejects covers every bad input WeCom's spec names, and checks
// each is reported with the right error, kind and code.
func TestDecryptRejects(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	key := officialKey(t)
	const ts, nonce = "1700000000", "12345"
	good, _, err := c.Encrypt([]byte("<xml/>"), ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	rawGood, _ := base64.StdEncoding.DecodeString(good)

	badPad := func(mutate func(p []byte)) string {
		p := framePlaintext(6, "<xml/>", officialCorpID)
		mutate(p)
		return sealPlaintext(t, key, p)
	}

	cases := []struct {
		name       string
		ciphertext string
		signature  string // "" = the correct signature for ciphertext
		want       error
	}{
		{"forged signature", good, "0000000000000000000000000000000000000000", ErrSignature},
		{"empty signature", good, "-", ErrSignature},
		{"signature made with another token", good, otherToken(t, ts, nonce, good), ErrSignature},
		{"signature of other ciphertext", good, c.Signature(ts, nonce, officialMsgEncrypt), ErrSignature},
		{"wrong corp in the receive ID", sealPlaintext(t, key, framePlaintext(6, "<xml/>", "wwSOMEONEELSE")), "", ErrReceiveID},
		{"receive ID prefix of the corp", sealPlaintext(t, key, framePlaintext(6, "<xml/>", officialCorpID[:5])), "", ErrReceiveID},
		{"corp ID with trailing bytes", sealPlaintext(t, key, framePlaintext(6, "<xml/>", officialCorpID+"x")), "", ErrReceiveID},
		{"pad value 0", badPad(func(p []byte) { p[len(p)-1] = 0 }), "", ErrPadding},
		{"pad value 33", badPad(func(p []byte) { p[len(p)-1] = 33 }), "", ErrPadding},
		{"pad value 255", badPad(func(p []byte) { p[len(p)-1] = 255 }), "", ErrPadding},
		{"inconsistent pad bytes", badPad(func(p []byte) {
			n := int(p[len(p)-1])
			if n < 2 {
				t.Fatalf("test frame has pad %d; need at least 2", n)
			}
			p[len(p)-2] ^= 1
		}), "", ErrPadding},
		{"encrypted with another key", sealPlaintext(t, bytes.Repeat([]byte{7}, 32), framePlaintext(6, "<xml/>", officialCorpID)), "", ErrPadding},
		{"truncated inside a block", base64.StdEncoding.EncodeToString(rawGood[:len(rawGood)-5]), "", ErrMalformed},
		{"truncated to a 16-byte boundary", base64.StdEncoding.EncodeToString(rawGood[:len(rawGood)-16]), "", ErrMalformed},
		{"empty ciphertext", "", "", ErrMalformed},
		{"not base64", "this is not base64!", "", ErrMalformed},
		{"base64 without padding", strings.TrimRight(good, "="), "", ErrMalformed},
		{"length beyond the buffer", sealPlaintext(t, key, framePlaintext(1000, "<xml/>", officialCorpID)), "", ErrMalformed},
		{"length 2^32-1", sealPlaintext(t, key, framePlaintext(0xffffffff, "<xml/>", officialCorpID)), "", ErrMalformed},
		{"shorter than the header", sealPlaintext(t, key, append([]byte("0123456789abc"), bytes.Repeat([]byte{19}, 19)...)), "", ErrMalformed},
	}
	if strings.TrimRight(good, "=") == good {
		t.Fatal("test ciphertext has no base64 padding; pick another message length")
	}
	for _, tc := range cases {
		sig := tc.signature
		switch sig {
		case "":
			sig = c.Signature(ts, nonce, tc.ciphertext)
		case "-":
			sig = ""
		}
		msg, err := c.Decrypt(sig, ts, nonce, tc.ciphertext)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Decrypt = %q, %v; want %v", tc.name, msg, err, tc.want)
			continue
		}
		if msg != nil {
			t.Errorf("%s: Decrypt returned a message with its error", tc.name)
		}
		for _, other := range []error{ErrSignature, ErrReceiveID, ErrPadding, ErrMalformed} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%s: error %v is also %v", tc.name, err, other)
			}
		}
		// The HTTP layer answers 403 for a forged signature and 400 for the
		// rest, from the error's kind, and logs the code and the detail.
		wantKind := errs.Invalid
		if tc.want == ErrSignature {
			wantKind = errs.Forbidden
		}
		if k := errs.KindOf(err); k != wantKind {
			t.Errorf("%s: kind %v, want %v", tc.name, k, wantKind)
		}
		if errs.CodeOf(err) != tc.want.(*errs.Error).Code {
			t.Errorf("%s: code %s", tc.name, errs.CodeOf(err))
		}
		if !strings.HasPrefix(err.Error(), "wecom: ") {
			t.Errorf("%s: error %q lacks context", tc.name, err)
		}
	}

	// VerifyURL applies the same checks to echostr.
	if _, err := c.VerifyURL("0000000000000000000000000000000000000000", officialVerifyTimestamp, officialVerifyNonce, officialVerifyEchoStr); !errors.Is(err, ErrSignature) {
		t.Errorf("VerifyURL(forged) = %v, want ErrSignature", err)
	}
	other, err := NewCrypt(officialToken, officialEncodingAESKey, "wwanothercorp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.VerifyURL(officialVerifySignature, officialVerifyTimestamp, officialVerifyNonce, officialVerifyEchoStr); !errors.Is(err, ErrReceiveID) {
		t.Errorf("VerifyURL(official echostr, other corp) = %v, want ErrReceiveID", err)
	}
	// A forged envelope fails on the signature, not on anything after it.
	if _, _, err := c.DecryptEnvelope("bad", ts, nonce, []byte(officialMsgBody)); !errors.Is(err, ErrSignature) {
		t.Errorf("DecryptEnvelope(forged) = %v, want ErrSignature", err)
	}
	if _, _, err := c.DecryptEnvelope(officialMsgSignature, officialMsgTimestamp, officialMsgNonce, []byte("garbage")); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecryptEnvelope(garbage) = %v, want ErrMalformed", err)
	}
}

func otherToken(t *testing.T, ts, nonce, ciphertext string) string {
	t.Helper()
	c, err := NewCrypt("AnotherToken", officialEncodingAESKey, officialCorpID)
	if err != nil {
		t.Fatal(err)
	}
	return c.Signature(ts, nonce, ciphertext)
}

func TestSignature(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	// The doc's worked example: sorted bytewise, digits before upper case
	// before lower case, then concatenated.
	sorted := officialMsgNonce + officialMsgTimestamp + officialToken + officialMsgEncrypt
	if want := fmt.Sprintf("%x", sha1.Sum([]byte(sorted))); c.Signature(officialMsgTimestamp, officialMsgNonce, officialMsgEncrypt) != want {
		t.Errorf("Signature does not sort bytewise")
	}
	// WeCom sends lower-case hex; upper case is accepted as the same value.
	if _, err := c.Decrypt(strings.ToUpper(officialMsgSignature), officialMsgTimestamp, officialMsgNonce, officialMsgEncrypt); err != nil {
		t.Errorf("Decrypt(upper-case signature) = %v", err)
	}
	// Each input is covered by the signature. (The scheme joins without
	// delimiters, so ("12", "", "3") signs like ("1", "2", "3"); that is
	// Tencent's design and harmless, as the ciphertext is always covered.)
	base := c.Signature("1", "2", "3")
	for _, sig := range []string{c.Signature("1", "2", "4"), c.Signature("1", "3", "3"), c.Signature("2", "2", "3")} {
		if sig == base {
			t.Errorf("signature does not change with its inputs")
		}
	}
}

func TestNewCryptRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, token, key, corp, field, code string
	}{
		{"short key", officialToken, officialEncodingAESKey[:42], officialCorpID, "encoding_aes_key", "wecom_bad_aes_key"},
		{"long key", officialToken, officialEncodingAESKey + "A", officialCorpID, "encoding_aes_key", "wecom_bad_aes_key"},
		{"empty key", officialToken, "", officialCorpID, "encoding_aes_key", "wecom_bad_aes_key"},
		{"key not base64", officialToken, "!" + officialEncodingAESKey[1:], officialCorpID, "encoding_aes_key", "wecom_bad_aes_key"},
		{"key with padding inside", officialToken, officialEncodingAESKey[:41] + "==", officialCorpID, "encoding_aes_key", "wecom_bad_aes_key"},
		{"empty token", "", officialEncodingAESKey, officialCorpID, "token", "wecom_bad_token"},
		{"token with punctuation", "tok-en", officialEncodingAESKey, officialCorpID, "token", "wecom_bad_token"},
		{"token over 32", strings.Repeat("a", 33), officialEncodingAESKey, officialCorpID, "token", "wecom_bad_token"},
		{"no corp ID", officialToken, officialEncodingAESKey, "", "corp_id", "wecom_missing_corp_id"},
	} {
		c, err := NewCrypt(tc.token, tc.key, tc.corp)
		e, ok := errs.As(err)
		if c != nil || !ok || e.Kind != errs.Invalid || e.Code != tc.code || len(e.Fields) != 1 || e.Fields[0].Location != tc.field {
			t.Errorf("%s: NewCrypt = %v, %v; want an invalid %s on %s", tc.name, c, err, tc.code, tc.field)
		}
	}
	if _, err := NewCrypt(strings.Repeat("a", 32), officialEncodingAESKey, "c"); err != nil {
		t.Errorf("32-letter token rejected: %v", err)
	}
}

func TestUnpad(t *testing.T) {
	t.Parallel()
	for pad := 1; pad <= 32; pad++ {
		b := append(bytes.Repeat([]byte{'x'}, 64-pad), bytes.Repeat([]byte{byte(pad)}, pad)...)
		got, err := unpad(b)
		if err != nil || len(got) != 64-pad {
			t.Errorf("unpad(pad %d) = %d bytes, %v", pad, len(got), err)
		}
	}
	if _, err := unpad(bytes.Repeat([]byte{32}, 16)); !errors.Is(err, ErrPadding) {
		t.Errorf("pad longer than the buffer: %v", err)
	}
}

// TestCryptConcurrent uses one Crypt from many goroutines, as the callback
// handler does; run under -race.
func TestCryptConcurrent(t *testing.T) {
	t.Parallel()
	c := officialCrypt(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				msg := fmt.Sprintf("goroutine %d message %d", i, j)
				ct, sig, err := c.Encrypt([]byte(msg), "1", "n")
				if err != nil {
					t.Error(err)
					return
				}
				got, err := c.Decrypt(sig, "1", "n", ct)
				if err != nil || string(got) != msg {
					t.Errorf("%q: %q, %v", msg, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestEncryptRandomFailure(t *testing.T) {
	t.Parallel()
	_, _, err := officialCrypt(t).WithRandom(failingReader{}).Encrypt([]byte("x"), "1", "n")
	if err == nil || !strings.Contains(err.Error(), "entropy exhausted") {
		t.Errorf("Encrypt with a failing random source = %v", err)
	}
}

// A shortened WeCom message stays valid UTF-8: it is stored and shown.
func TestTruncateKeepsCharactersWhole(t *testing.T) {
	got := truncate("企业微信回调", 4) // 4 bytes end inside the second character
	if got != "企…" || !utf8.ValidString(got) {
		t.Fatalf("truncate = %q", got)
	}
}
