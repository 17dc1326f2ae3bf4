package event

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
)

// EndpointBatch names POST /v1/batch; the single-message endpoints are named
// by their message type.
const EndpointBatch = "batch"

// Request is one request to an ingest endpoint.
type Request struct {
	// Endpoint is EndpointBatch or the message type of a single-message
	// endpoint (/v1/track is "track").
	Endpoint string
	// WriteKey is the username of HTTP Basic auth; "" when the request had
	// none, and the body's writeKey is used.
	WriteKey string
	// Body is the request body after decompression. The caller need read no
	// more than MaxBatchBytes+1 bytes: anything longer is refused anyway.
	Body []byte
	// ReceivedAt is when the request arrived; zero means now.
	ReceivedAt time.Time
}

// Rejection is one message of a request that was not accepted.
type Rejection struct {
	Index  int    `json:"index" doc:"Position of the message in the batch (0 for single-message endpoints)."`
	Code   string `json:"code" doc:"Why, for machines: missing_identity, missing_event, missing_previous_id, missing_user_id, missing_group_id, invalid_type, invalid_message, invalid_field, invalid_timestamp, value_too_long."`
	Reason string `json:"reason" doc:"Why, for people."`
}

// Result is what became of a request's messages.
type Result struct {
	// Accepted counts messages stored, or already stored under their messageId.
	Accepted int
	Rejected []Rejection
}

// Limits on single values, so that identifiers stay indexable.
const (
	maxIDLen   = 255 // messageId, userId, anonymousId, previousId, groupId
	maxNameLen = 255 // event and page/screen names
	payloadMax = 2048
)

// Ingest checks a request's messages and commits the valid ones, returning
// once they are durable. Messages whose messageId the workspace already has
// are accepted and not stored again, so a client's retry is harmless.
//
// A request that cannot be read at all is refused with an error: a bad or
// missing write key (Unauthenticated), a body or a message over its size
// limit (TooLarge: batch_too_large, message_too_large), or a body that is not
// JSON (Invalid: malformed_json). Otherwise single messages that are invalid
// are listed in Result.Rejected and the rest accepted; on a single-message
// endpoint an invalid message is an Invalid error with the rejection's code.
// Every refusal made once the workspace is known is recorded as an ingest
// error, where engineers find it.
func (s *Service) Ingest(ctx context.Context, in Request) (Result, error) {
	received := in.ReceivedAt
	if received.IsZero() {
		received = s.now()
	}
	received = received.UTC().Truncate(time.Millisecond)
	batch := in.Endpoint == EndpointBatch
	if !batch && !Type(in.Endpoint).valid() {
		return Result{}, fmt.Errorf("event: unknown ingest endpoint %q", in.Endpoint)
	}

	var tenantID int64
	if in.WriteKey != "" {
		id, err := s.tenantFor(ctx, in.WriteKey)
		if err != nil {
			return Result{}, err
		}
		tenantID = id
	}
	refuse := func(err *errs.Error, index int) (Result, error) {
		if tenantID != 0 {
			s.recordRefusal(tenantID, received, index, err, in.Body)
		}
		return Result{}, err
	}

	pr, perr := parse(in.Body, in.Endpoint, received)
	if perr != nil {
		return refuse(perr.err, perr.index)
	}
	if tenantID == 0 {
		id, err := s.tenantFor(ctx, pr.writeKey)
		if err != nil {
			return Result{}, err
		}
		tenantID = id
	}
	for i := range pr.rows {
		pr.rows[i].tenantID = tenantID
	}
	for i := range pr.errors {
		pr.errors[i].tenantID = tenantID
	}
	if err := s.w.write(&pending{rows: pr.rows, errors: pr.errors}); err != nil {
		return Result{}, err
	}
	if !batch && len(pr.rejected) > 0 {
		rj := pr.rejected[0]
		return Result{}, errs.E(errs.Invalid, rj.Code, "%s", rj.Reason)
	}
	return Result{Accepted: len(pr.rows), Rejected: pr.rejected}, nil
}

// parsed is a request body read into rows and rejections.
type parsed struct {
	rows     []row
	errors   []errorRow // rejections, as stored (tenant not yet set)
	rejected []Rejection
	writeKey string // from the body
}

// refusedRequest is a request refused whole; index names the message at
// fault, or is -1.
type refusedRequest struct {
	index int
	err   *errs.Error
}

// parse checks a request body against the limits and the spec and turns it
// into rows and rejections.
func parse(body []byte, endpoint string, received time.Time) (parsed, *refusedRequest) {
	refuse := func(index int, err *errs.Error) (parsed, *refusedRequest) {
		return parsed{}, &refusedRequest{index, err}
	}
	batch := endpoint == EndpointBatch
	limit, code, what := MaxBatchBytes, "batch_too_large", "batch"
	if !batch {
		limit, code, what = MaxMessageBytes, "message_too_large", "message"
	}
	if len(body) > limit {
		return refuse(-1, errs.E(errs.TooLarge, code, "the request body is over the limit of %d KB (%d bytes) per %s", limit>>10, limit, what))
	}
	if !utf8.Valid(body) {
		// Stored text must be UTF-8 (PostgreSQL insists); what is not is kept
		// as U+FFFD rather than refused.
		body = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
	}

	rd := &jsonReader{b: body}
	malformed := func() (parsed, *refusedRequest) {
		var v any
		detail := "the body is not valid JSON"
		if err := json.Unmarshal(body, &v); err != nil {
			detail = syntaxProblem(body, err)
		}
		return refuse(-1, errs.E(errs.Invalid, "malformed_json", "%s", detail))
	}
	var env wireBatch
	var msgs []rawMessage
	if batch {
		bb, ok := rd.readBatch()
		switch {
		case !ok:
			return malformed()
		case !bb.object:
			return refuse(-1, errs.E(errs.Invalid, "malformed_json", `the body must be a JSON object: {"batch": [message, …]}`))
		case bb.batchKey && !bb.hasBatch:
			return refuse(-1, errs.E(errs.Invalid, "invalid_field", `batch must be an array of messages`))
		case !bb.hasBatch:
			return refuse(-1, errs.E(errs.Invalid, "missing_batch", `the body has no batch array: send {"batch": [message, …]}`))
		}
		var err error
		if env, err = readEnvelope(rd, bb.top); err != nil {
			return refuse(-1, errs.E(errs.Invalid, "invalid_field", "%v", err))
		}
		msgs = bb.msgs
	} else {
		m, ok := rd.readMessage()
		if !ok {
			return malformed()
		}
		msgs = []rawMessage{m}
	}
	for i, m := range msgs {
		if n := m.end - m.start; n > MaxMessageBytes {
			return refuse(i, errs.E(errs.TooLarge, "message_too_large",
				"message %d is %d bytes, over the limit of %d KB (%d bytes) per message", i, n, MaxMessageBytes>>10, MaxMessageBytes))
		}
	}
	batchSentAt, err := parseTime(env.SentAt)
	if err != nil {
		return refuse(-1, errs.E(errs.Invalid, "invalid_timestamp", "sentAt: %v", err))
	}

	out := parsed{rows: make([]row, 0, len(msgs)), writeKey: env.WriteKey}
	for i, m := range msgs {
		var wm wireMessage
		var r row
		var rej *Rejection
		if m.object {
			var problem string
			wm, problem = readMessageFields(rd, m)
			r, rej = decode(wm, problem, endpoint, &env, batchSentAt, received)
		} else {
			rej = &Rejection{Code: "invalid_message", Reason: "the message must be a JSON object"}
		}
		if !batch && out.writeKey == "" {
			out.writeKey = wm.WriteKey
		}
		if rej != nil {
			rej.Index = i
			out.rejected = append(out.rejected, *rej)
			out.errors = append(out.errors, errorRow{receivedAt: db.Millis(received), index: i, messageID: r.messageID, typ: r.typ,
				code: rej.Code, reason: rej.Reason, payload: truncate(string(rd.text(m.span)), payloadMax)})
			continue
		}
		out.rows = append(out.rows, r)
	}
	return out, nil
}

// recordRefusal stores a refused request as an ingest error. The request has
// already failed; failing to record it is only logged.
func (s *Service) recordRefusal(tenantID int64, received time.Time, index int, e *errs.Error, body []byte) {
	p := &pending{errors: []errorRow{{tenantID: tenantID, receivedAt: db.Millis(received), index: index,
		code: errs.CodeOf(e), reason: e.Message, payload: truncate(strings.ToValidUTF8(string(body[:min(len(body), payloadMax+4)]), "\uFFFD"), payloadMax)}}}
	if err := s.w.write(p); err != nil {
		s.log.Error("event: unable to record a refused ingest request", "tenant_id", tenantID, "code", errs.CodeOf(e), "err", err)
	}
}

// decode turns one message into a row, or says why it cannot be one.
// problem is what reading the message's fields found wrong, if anything.
// The row's messageId and type are filled as far as they could be read, for
// the ingest error.
func decode(m wireMessage, problem, endpoint string, env *wireBatch, batchSentAt, received time.Time) (row, *Rejection) {
	r := row{
		messageID:   clean(m.MessageID),
		userID:      clean(m.UserID),
		anonymousID: clean(m.AnonymousID),
		previousID:  clean(m.PreviousID),
		groupID:     clean(m.GroupID),
		receivedAt:  db.Millis(received),
	}
	t := Type(endpoint)
	if endpoint == EndpointBatch {
		t = Type(strings.ToLower(strings.TrimSpace(m.Type)))
	}
	r.typ = string(t)
	reject := func(code, format string, args ...any) (row, *Rejection) {
		return r, &Rejection{Code: code, Reason: fmt.Sprintf(format, args...)}
	}
	if !t.valid() {
		if m.Type == "" {
			return reject("invalid_type", "the message has no type (track, identify, page, screen, group or alias)")
		}
		r.typ = truncate(m.Type, 32)
		return reject("invalid_type", "type %s is not track, identify, page, screen, group or alias", quoteID(m.Type))
	}
	if problem != "" {
		return reject("invalid_field", "%s", problem)
	}
	for _, f := range [...]struct{ name, v string }{
		{"messageId", r.messageID}, {"userId", r.userID}, {"anonymousId", r.anonymousID}, {"previousId", r.previousID}, {"groupId", r.groupID},
	} {
		if len(f.v) > maxIDLen {
			return reject("value_too_long", "%s is %d bytes long; the limit is %d", f.name, len(f.v), maxIDLen)
		}
	}
	switch t {
	case Track:
		r.name = clean(strings.TrimSpace(m.Event))
		if r.name == "" {
			return reject("missing_event", "a track message needs an event name (event)")
		}
	case Page, Screen:
		r.name = clean(strings.TrimSpace(m.Name))
	}
	if len(r.name) > maxNameLen {
		return reject("value_too_long", "the name is %d bytes long; the limit is %d", len(r.name), maxNameLen)
	}
	switch {
	case t == Alias && r.userID == "":
		return reject("missing_user_id", "an alias message needs the new userId")
	case t == Alias && r.previousID == "":
		return reject("missing_previous_id", "an alias message needs the previousId it links to userId")
	case r.userID == "" && r.anonymousID == "":
		return reject("missing_identity", "the message has neither userId nor anonymousId; one is required")
	case t == Group && r.groupID == "":
		return reject("missing_group_id", "a group message needs a groupId")
	}
	ctxDoc, err := mergeObjects(env.Context, m.Context)
	if err != nil {
		return reject("invalid_field", "context: %v", err)
	}
	integ, err := mergeObjects(env.Integrations, m.Integrations)
	if err != nil {
		return reject("invalid_field", "integrations: %v", err)
	}
	r.properties, r.traits, r.context, r.integrations = document(m.Properties), document(m.Traits), document(ctxDoc), document(integ)

	// Clock skew: the client's clock may be wrong, but the interval between
	// the event and the send is not, so the event happened that long before
	// the server received it (Segment's rule).
	orig, err := parseTime(m.OriginalTimestamp)
	if err != nil {
		return reject("invalid_timestamp", "originalTimestamp: %v", err)
	}
	if orig.IsZero() {
		if orig, err = parseTime(m.Timestamp); err != nil {
			return reject("invalid_timestamp", "timestamp: %v", err)
		}
	}
	sent, err := parseTime(m.SentAt)
	if err != nil {
		return reject("invalid_timestamp", "sentAt: %v", err)
	}
	if sent.IsZero() {
		sent = batchSentAt
	}
	ts := received
	switch {
	case !orig.IsZero() && !sent.IsZero():
		ts = received.Add(-sent.Sub(orig))
	case !orig.IsZero():
		ts = orig
	}
	r.timestamp = db.Millis(ts)
	if !orig.IsZero() {
		r.originalTimestamp = db.Millis(orig)
	}
	if !sent.IsZero() {
		r.sentAt = db.Millis(sent)
	}
	if r.messageID == "" {
		// Without a messageId there is nothing to deduplicate on; this one
		// is unique, so a retry of this message would be stored again.
		r.messageID = newMessageID()
	}
	return r, nil
}

// newMessageID makes a random messageId for a message that came without.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "siyu-" + hex.EncodeToString(b[:])
}
