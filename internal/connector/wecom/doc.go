// Package wecom connects a Siyu workspace to a WeCom (企业微信) corp: its staff,
// their external contacts (customers), customer groups and corp tags.
//
// The package has three layers:
//
//   - The callback protocol (crypto.go, callback.go): WeCom signs and encrypts
//     every callback with Tencent's WXBizMsgCrypt scheme. Crypt verifies the
//     msg_signature, decrypts the AES-256-CBC payload and checks it was meant
//     for this corp; ParseEvent turns the decrypted XML or JSON message into an
//     Event with a stable idempotency Key for the durable inbox. Crypt also
//     encrypts, so the simulator (wecomtest) can fire callbacks exactly as
//     WeCom does and Tencent's official samples interoperate with both sides.
//   - The API client: access tokens, rate limits and the endpoints Siyu calls.
//   - The connector service: the callback inbox, event processing and sync.
//
// A callback never trusts its payload before the signature is checked, and
// nothing is applied from it directly: events only say what changed, and the
// service reads the current state from the API before it writes.
package wecom
