package wecom

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// CallbackPath is where the app mounts Handler; {workspace} is the
// workspace's slug.
const CallbackPath = "/connect/wecom/{workspace}/callback"

// MaxCallbackBytes bounds a callback body; WeCom's are a few kilobytes.
const MaxCallbackBytes = 1 << 20

// Handler serves WeCom's callbacks for every workspace at CallbackPath. It
// needs no session or API key: the msg_signature, made with the workspace's
// secret Token, is the authentication.
//
//   - GET verifies the URL: echostr is decrypted and its plaintext answered.
//   - POST carries an event (XML or JSON): it is verified, decrypted, parsed
//     and committed to the inbox, then answered "success". WeCom is never
//     called here, so the answer comes in milliseconds, well within the 5
//     seconds WeCom waits before it retries.
//
// A forged signature is answered 403, a malformed or misdirected callback
// (wrong corp, bad padding, truncated) 400, an unknown or unconnected
// workspace 404; each is logged with the workspace and the sender's address.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(s.serveCallback)
}

func remoteAddr(r *http.Request) string {
	if ip := tenant.RequestMetaFrom(r.Context()).IP; ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (s *Service) serveCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("workspace")
	if slug == "" {
		// Mounted without the pattern: /connect/wecom/{workspace}/callback.
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) == 4 && parts[0] == "connect" && parts[1] == "wecom" && parts[3] == "callback" {
			slug = parts[2]
		}
	}
	log := s.log.With("workspace", slug, "remote_addr", remoteAddr(r), "method", r.Method)
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ws, err := s.workspaces.WorkspaceBySlug(ctx, slug)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			log.WarnContext(ctx, "wecom: callback for an unknown workspace")
			http.Error(w, "unknown workspace", http.StatusNotFound)
			return
		}
		log.ErrorContext(ctx, "wecom: callback: unable to look up the workspace", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	log = log.With("tenant", ws.ID)
	cred, err := s.Credentials(ctx, ws.ID)
	if err != nil {
		if errors.Is(err, ErrNotConfigured) {
			log.WarnContext(ctx, "wecom: callback for a workspace that has not connected WeCom")
			http.Error(w, "WeCom is not connected in this workspace", http.StatusNotFound)
			return
		}
		log.ErrorContext(ctx, "wecom: callback: unable to read the settings", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	crypt, err := NewCrypt(cred.Token, cred.EncodingAESKey, cred.CorpID)
	if err != nil {
		log.ErrorContext(ctx, "wecom: callback: the saved Token or EncodingAESKey is unusable", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		s.refuse(w, r, log, err)
		return
	}
	if r.Method == http.MethodGet {
		if q.EchoStr == "" {
			s.refuse(w, r, log, errs.E(errs.Invalid, "wecom_malformed_callback", "the URL verification has no echostr"))
			return
		}
		plain, err := crypt.VerifyURL(q.MsgSignature, q.Timestamp, q.Nonce, q.EchoStr)
		if err != nil {
			s.refuse(w, r, log, err)
			return
		}
		if err := s.markVerified(ctx, ws.ID); err != nil {
			log.WarnContext(ctx, "wecom: unable to record the URL verification", "err", err)
		}
		log.InfoContext(ctx, "wecom: callback URL verified")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(plain)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.WarnContext(ctx, "wecom: callback body too large", "limit", MaxCallbackBytes)
			http.Error(w, "callback body too large", http.StatusRequestEntityTooLarge)
			return
		}
		log.WarnContext(ctx, "wecom: unable to read a callback body", "err", err)
		http.Error(w, "unable to read the body", http.StatusBadRequest)
		return
	}
	msg, _, err := crypt.DecryptEnvelope(q.MsgSignature, q.Timestamp, q.Nonce, body)
	if err != nil {
		s.refuse(w, r, log, err)
		return
	}
	var stored Stored
	ev, perr := ParseEvent(msg)
	if perr != nil {
		// Signed by WeCom but unreadable: keep it, so nothing WeCom sent is
		// lost, and acknowledge it, as a retry would be just as unreadable.
		log.WarnContext(ctx, "wecom: callback message is not a readable event; stored as ignored", "err", perr)
		stored, err = s.storeUnreadable(ctx, ws.ID, msg, perr)
	} else {
		stored, err = s.storeEvent(ctx, ws.ID, ev)
	}
	if err != nil {
		// Not stored: WeCom must retry, so do not say success.
		log.ErrorContext(ctx, "wecom: unable to store a callback", "err", err)
		http.Error(w, "unable to store the event", http.StatusServiceUnavailable)
		return
	}
	log.DebugContext(ctx, "wecom: callback stored", "event", stored.ID, "kind", string(ev.Kind()), "duplicate", stored.Duplicate)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}

// refuse answers a callback that failed verification: 403 for a signature
// that does not match (someone without the Token), 400 for anything else.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := http.StatusBadRequest
	msg := "malformed WeCom callback"
	if errors.Is(err, ErrSignature) {
		status, msg = http.StatusForbidden, "signature mismatch"
	}
	log.WarnContext(r.Context(), "wecom: callback refused", "status", status, "code", errs.CodeOf(err), "err", err)
	http.Error(w, msg, status)
}
