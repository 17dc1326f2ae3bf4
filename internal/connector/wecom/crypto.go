package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/errs"
)

// This file implements Tencent's WXBizMsgCrypt callback scheme (企业微信
// "加解密方案说明", developer.work.weixin.qq.com/document/path/90968) byte for
// byte, so that ciphertext made by Tencent's official samples decrypts here
// and ciphertext made here decrypts in them:
//
//	msg_signature = hex(SHA1(sort(token, timestamp, nonce, ciphertext) joined))
//	key           = base64(EncodingAESKey + "="), 32 bytes; IV = key[:16]
//	ciphertext    = base64(AES-256-CBC(PKCS#7-pad-to-32(
//	                    random(16) ‖ uint32be(len(msg)) ‖ msg ‖ receiveID)))

// Errors returned by Crypt. They are *errs.Error values, so the HTTP layer can
// tell them apart with errors.Is and log errs.CodeOf; a callback with a bad
// signature is answered 403 (someone without the token sent it), everything
// else 400. Errors are wrapped with the detail of what was wrong.
var (
	// ErrSignature means msg_signature does not match the token, timestamp,
	// nonce and ciphertext: the request is forged, or the token differs from
	// the one configured in WeCom's admin.
	ErrSignature = errs.E(errs.Forbidden, "wecom_bad_signature",
		"the callback's msg_signature does not match; check that the Token in WeCom's admin equals the one saved in Siyu")
	// ErrReceiveID means the message decrypted but was encrypted for another
	// receiver (another corp ID).
	ErrReceiveID = errs.E(errs.Invalid, "wecom_wrong_receive_id",
		"the callback was encrypted for another corp; check that the corp ID saved in Siyu is this corp's")
	// ErrPadding means the decrypted bytes do not end in valid PKCS#7 padding
	// to 32-byte blocks: the EncodingAESKey is wrong or the ciphertext was
	// altered.
	ErrPadding = errs.E(errs.Invalid, "wecom_bad_padding",
		"the callback does not decrypt with this EncodingAESKey; check that the key in WeCom's admin equals the one saved in Siyu")
	// ErrMalformed means the request is not a WeCom callback at all: missing
	// parameters, a body that is neither WeCom's XML nor JSON envelope,
	// ciphertext that is not base64 or not whole blocks, or a decrypted
	// message whose length field points past its end.
	ErrMalformed = errs.E(errs.Invalid, "wecom_malformed_callback",
		"the callback is malformed (missing parameters, not base64, truncated, or a bad length)")
)

const (
	// aesKeyLen is the decoded EncodingAESKey: AES-256.
	aesKeyLen = 32
	// encodingAESKeyLen is the length WeCom's admin generates and accepts.
	encodingAESKeyLen = 43
	// padBlock is the block size of WeCom's PKCS#7 padding. It is 32, not
	// AES's 16: Tencent's samples pad to the key size, so pad values run
	// 1..32 and a ciphertext is always a whole number of 32-byte blocks.
	padBlock = 32
	// randomLen is the random prefix of every plaintext.
	randomLen = 16
	// headerLen is the random prefix plus the 4-byte message length.
	headerLen = randomLen + 4
	// maxTokenLen is the longest Token WeCom's admin accepts.
	maxTokenLen = 32
)

// Crypt signs, verifies, encrypts and decrypts callbacks for one corp's app.
// It is safe for concurrent use.
type Crypt struct {
	token     string
	receiveID string
	block     cipher.Block
	iv        []byte
	random    io.Reader
}

// NewCrypt returns a Crypt for the callback Token and EncodingAESKey set in
// WeCom's admin, checking that messages are for receiveID (the corp ID for a
// self-built app's callbacks).
func NewCrypt(token, encodingAESKey, receiveID string) (*Crypt, error) {
	if err := validToken(token); err != nil {
		return nil, err
	}
	if receiveID == "" {
		return nil, errs.Field("corp_id", "wecom_missing_corp_id", "the corp ID is required to check who a callback is for")
	}
	key, err := decodeAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		// Unreachable with a 32-byte key; kept so a change above cannot panic.
		return nil, fmt.Errorf("wecom: unable to set up AES: %w", err)
	}
	return &Crypt{
		token:     token,
		receiveID: receiveID,
		block:     block,
		iv:        bytes.Clone(key[:aes.BlockSize]),
		random:    rand.Reader,
	}, nil
}

// WithRandom returns a copy of c that takes the 16 random bytes of each
// encrypted message from r instead of crypto/rand, so tests can reproduce a
// ciphertext exactly. Never use it outside tests.
func (c *Crypt) WithRandom(r io.Reader) *Crypt {
	cp := *c
	cp.random = r
	return &cp
}

// ReceiveID returns the receive ID (corp ID) messages must carry.
func (c *Crypt) ReceiveID() string { return c.receiveID }

func validToken(token string) error {
	if token == "" || len(token) > maxTokenLen {
		return errs.Field("token", "wecom_bad_token", "the callback Token must be 1–%d letters or digits, as set in WeCom's admin", maxTokenLen)
	}
	for i := 0; i < len(token); i++ {
		b := token[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return errs.Field("token", "wecom_bad_token", "the callback Token must be 1–%d letters or digits, as set in WeCom's admin", maxTokenLen)
		}
	}
	return nil
}

// decodeAESKey turns the 43-character EncodingAESKey into the 32-byte key.
// The decoding is deliberately not base64 Strict: 43 characters carry 258
// bits, and WeCom's generated keys (Tencent's own sample among them) often
// have non-zero bits in the 2 that are dropped.
func decodeAESKey(encodingAESKey string) ([]byte, error) {
	bad := func(why string) error {
		return errs.Field("encoding_aes_key", "wecom_bad_aes_key",
			"the EncodingAESKey must be the %d letters and digits shown in WeCom's admin (%s)", encodingAESKeyLen, why)
	}
	if len(encodingAESKey) != encodingAESKeyLen {
		return nil, bad(fmt.Sprintf("got %d characters", len(encodingAESKey)))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, bad("it is not base64")
	}
	if len(key) != aesKeyLen {
		// Unreachable: 44 base64 characters ending in one "=" are 32 bytes.
		return nil, bad(fmt.Sprintf("it decodes to %d bytes", len(key)))
	}
	return key, nil
}

// Signature returns msg_signature for a ciphertext: the hex SHA1 of the token,
// timestamp, nonce and ciphertext sorted bytewise and concatenated.
func (c *Crypt) Signature(timestamp, nonce, ciphertext string) string {
	parts := []string{c.token, timestamp, nonce, ciphertext}
	sort.Strings(parts)
	h := sha1.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// verify checks msgSignature in constant time, so response timing does not
// reveal how much of a forged signature was right.
func (c *Crypt) verify(msgSignature, timestamp, nonce, ciphertext string) error {
	want := c.Signature(timestamp, nonce, ciphertext)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(msgSignature)), []byte(want)) != 1 {
		return fmt.Errorf("wecom: msg_signature %q does not match the token, timestamp %q, nonce %q and ciphertext: %w",
			truncate(msgSignature, 64), truncate(timestamp, 32), truncate(nonce, 64), ErrSignature)
	}
	return nil
}

// VerifyURL answers the GET request WeCom sends when the callback URL is
// saved in its admin: it verifies and decrypts echostr and returns the
// plaintext, which must be the response body as is.
func (c *Crypt) VerifyURL(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	return c.Decrypt(msgSignature, timestamp, nonce, echostr)
}

// Decrypt verifies msgSignature over ciphertext (the base64 Encrypt value of a
// callback, or echostr) and returns the message inside. Errors wrap
// ErrSignature, ErrMalformed, ErrPadding or ErrReceiveID.
func (c *Crypt) Decrypt(msgSignature, timestamp, nonce, ciphertext string) ([]byte, error) {
	// The signature is checked first: it keys on the secret token, so an
	// attacker without it never reaches the decryption and cannot use the
	// padding and length errors below as an oracle.
	if err := c.verify(msgSignature, timestamp, nonce, ciphertext); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("wecom: ciphertext is not base64: %v: %w", err, ErrMalformed)
	}
	if len(raw) == 0 || len(raw)%padBlock != 0 {
		return nil, fmt.Errorf("wecom: ciphertext is %d bytes, not a whole number of %d-byte blocks (truncated?): %w",
			len(raw), padBlock, ErrMalformed)
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(plain, raw)

	plain, err = unpad(plain)
	if err != nil {
		return nil, err
	}
	if len(plain) < headerLen {
		return nil, fmt.Errorf("wecom: decrypted message is %d bytes, shorter than its %d-byte header: %w",
			len(plain), headerLen, ErrMalformed)
	}
	msgLen := binary.BigEndian.Uint32(plain[randomLen:headerLen])
	body := plain[headerLen:]
	if uint64(msgLen) > uint64(len(body)) {
		return nil, fmt.Errorf("wecom: decrypted message says it is %d bytes but only %d follow: %w",
			msgLen, len(body), ErrMalformed)
	}
	msg, receiveID := body[:msgLen], body[msgLen:]
	if !bytes.Equal(receiveID, []byte(c.receiveID)) {
		return nil, fmt.Errorf("wecom: message is for receive ID %q, not %q: %w",
			truncate(string(receiveID), 64), c.receiveID, ErrReceiveID)
	}
	return msg, nil
}

// unpad strips PKCS#7 padding to 32-byte blocks, rejecting a pad value of 0,
// one over 32, or pad bytes that differ.
func unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	if n == 0 || n > padBlock || n > len(b) {
		return nil, fmt.Errorf("wecom: padding value %d is outside 1..%d: %w", n, padBlock, ErrPadding)
	}
	for _, p := range b[len(b)-n:] {
		if int(p) != n {
			return nil, fmt.Errorf("wecom: padding bytes are inconsistent (want %d × %#02x): %w", n, n, ErrPadding)
		}
	}
	return b[:len(b)-n], nil
}

// Encrypt encrypts msg for this corp and signs it, returning the base64
// ciphertext (the Encrypt value of a callback) and its msg_signature.
func (c *Crypt) Encrypt(msg []byte, timestamp, nonce string) (ciphertext, signature string, err error) {
	if uint64(len(msg)) > math.MaxUint32-uint64(headerLen+len(c.receiveID)+padBlock) {
		return "", "", fmt.Errorf("wecom: message of %d bytes is too long to encrypt", len(msg))
	}
	n := headerLen + len(msg) + len(c.receiveID)
	pad := padBlock - n%padBlock // 1..32: a full block when n is already aligned
	plain := make([]byte, n+pad)
	if _, err := io.ReadFull(c.random, plain[:randomLen]); err != nil {
		return "", "", fmt.Errorf("wecom: unable to read random bytes: %w", err)
	}
	binary.BigEndian.PutUint32(plain[randomLen:headerLen], uint32(len(msg)))
	copy(plain[headerLen:], msg)
	copy(plain[headerLen+len(msg):], c.receiveID)
	for i := n; i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(plain, plain)
	ciphertext = base64.StdEncoding.EncodeToString(plain)
	return ciphertext, c.Signature(timestamp, nonce, ciphertext), nil
}

// Format is how WeCom frames a callback: the admin lets each app choose XML
// (the default) or JSON, for both the envelope and the message inside.
type Format string

// Callback formats.
const (
	FormatXML  Format = "xml"
	FormatJSON Format = "json"
)

// Envelope is the body of a POST callback: the encrypted message and who it
// is for. WeCom sends it as
//
//	<xml><ToUserName><![CDATA[corpid]]></ToUserName><Encrypt><![CDATA[…]]></Encrypt><AgentID><![CDATA[…]]></AgentID></xml>
//
// or, for JSON, {"tousername":"corpid","encrypt":"…","agentid":"…"}.
type Envelope struct {
	ToUserName string // the corp ID
	AgentID    string // the app's agent ID; empty for some events
	Encrypt    string // base64 ciphertext, signed by msg_signature
	Format     Format
}

type cdata struct {
	Value string `xml:",cdata"`
}

type xmlEnvelope struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName cdata    `xml:"ToUserName"`
	Encrypt    cdata    `xml:"Encrypt"`
	AgentID    cdata    `xml:"AgentID"`
}

type jsonEnvelope struct {
	ToUserName string    `json:"tousername"`
	Encrypt    string    `json:"encrypt"`
	AgentID    flexValue `json:"agentid"`
}

// Marshal renders the envelope in its Format (XML when unset), as WeCom
// sends it.
func (e Envelope) Marshal() []byte {
	if e.Format == FormatJSON {
		b, err := json.Marshal(struct {
			ToUserName string `json:"tousername"`
			Encrypt    string `json:"encrypt"`
			AgentID    string `json:"agentid"`
		}{e.ToUserName, e.Encrypt, e.AgentID})
		if err != nil {
			panic("wecom: marshalling strings cannot fail: " + err.Error())
		}
		return b
	}
	b, err := xml.Marshal(xmlEnvelope{
		ToUserName: cdata{e.ToUserName},
		Encrypt:    cdata{e.Encrypt},
		AgentID:    cdata{e.AgentID},
	})
	if err != nil {
		panic("wecom: marshalling strings cannot fail: " + err.Error())
	}
	return b
}

// ParseEnvelope reads a POST callback body in either format, telling them
// apart by the first non-blank byte. Errors wrap ErrMalformed.
func ParseEnvelope(body []byte) (Envelope, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff")
	var env Envelope
	switch {
	case len(trimmed) > 0 && trimmed[0] == '<':
		var x xmlEnvelope
		if err := xml.Unmarshal(trimmed, &x); err != nil {
			return Envelope{}, fmt.Errorf("wecom: callback body is not WeCom's XML envelope: %v: %w", err, ErrMalformed)
		}
		env = Envelope{ToUserName: x.ToUserName.Value, Encrypt: x.Encrypt.Value, AgentID: x.AgentID.Value, Format: FormatXML}
	case len(trimmed) > 0 && trimmed[0] == '{':
		var j jsonEnvelope
		if err := json.Unmarshal(trimmed, &j); err != nil {
			return Envelope{}, fmt.Errorf("wecom: callback body is not WeCom's JSON envelope: %v: %w", err, ErrMalformed)
		}
		env = Envelope{ToUserName: j.ToUserName, Encrypt: j.Encrypt, AgentID: string(j.AgentID), Format: FormatJSON}
	default:
		return Envelope{}, fmt.Errorf("wecom: callback body is neither XML nor JSON: %w", ErrMalformed)
	}
	env.ToUserName = strings.TrimSpace(env.ToUserName)
	env.AgentID = strings.TrimSpace(env.AgentID)
	env.Encrypt = strings.TrimSpace(env.Encrypt)
	if env.Encrypt == "" {
		return Envelope{}, fmt.Errorf("wecom: callback body has no Encrypt value: %w", ErrMalformed)
	}
	return env, nil
}

// EncryptEnvelope encrypts msg and wraps it in the POST body WeCom sends,
// addressed to this corp and agentID. It returns the body and the
// msg_signature to send with timestamp and nonce in the query (see Query).
func (c *Crypt) EncryptEnvelope(msg []byte, agentID, timestamp, nonce string, format Format) (body []byte, signature string, err error) {
	ciphertext, signature, err := c.Encrypt(msg, timestamp, nonce)
	if err != nil {
		return nil, "", err
	}
	env := Envelope{ToUserName: c.receiveID, AgentID: agentID, Encrypt: ciphertext, Format: format}
	return env.Marshal(), signature, nil
}

// DecryptEnvelope parses a POST callback body, verifies its signature and
// returns the decrypted message with the envelope it came in. Errors wrap
// ErrMalformed, ErrSignature, ErrPadding or ErrReceiveID.
func (c *Crypt) DecryptEnvelope(msgSignature, timestamp, nonce string, body []byte) ([]byte, Envelope, error) {
	env, err := ParseEnvelope(body)
	if err != nil {
		return nil, Envelope{}, err
	}
	msg, err := c.Decrypt(msgSignature, timestamp, nonce, env.Encrypt)
	if err != nil {
		return nil, env, err
	}
	return msg, env, nil
}

// Query is the signed query string of a callback request:
// ?msg_signature=…&timestamp=…&nonce=…[&echostr=…].
type Query struct {
	MsgSignature string
	Timestamp    string
	Nonce        string
	EchoStr      string // only on the GET that verifies the URL
}

// ParseQuery reads a callback's query parameters, already URL-decoded (WeCom
// percent-encodes echostr, whose base64 may hold '+' and '/'). Errors wrap
// ErrMalformed; echostr is not required here, as POSTs have none.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{
		MsgSignature: v.Get("msg_signature"),
		Timestamp:    v.Get("timestamp"),
		Nonce:        v.Get("nonce"),
		EchoStr:      v.Get("echostr"),
	}
	var missing []string
	for _, p := range []struct{ name, value string }{
		{"msg_signature", q.MsgSignature}, {"timestamp", q.Timestamp}, {"nonce", q.Nonce},
	} {
		if p.value == "" {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		return Query{}, fmt.Errorf("wecom: callback query lacks %s: %w", strings.Join(missing, ", "), ErrMalformed)
	}
	return q, nil
}

// Values encodes q as query parameters, leaving out an empty echostr.
func (q Query) Values() url.Values {
	v := url.Values{
		"msg_signature": {q.MsgSignature},
		"timestamp":     {q.Timestamp},
		"nonce":         {q.Nonce},
	}
	if q.EchoStr != "" {
		v.Set("echostr", q.EchoStr)
	}
	return v
}

// truncate shortens attacker-controlled text before it goes into an error
// message and from there into logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a character boundary: WeCom's messages and names are Chinese,
	// and half a character would make the stored text invalid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
