package audience

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-dev/siyu/internal/db"
)

// Checkpoints. Tags and events are most of the rows a rebuild reads (about 8
// and 10 a customer in the bench, against one profile row), and past days of
// events hardly change. So the service periodically stores the index's tag
// and event-day bitmaps with the position of its change feeds; a start reads
// them back, reads profiles, spend and scores afresh (one row a customer
// each, and the feeds of those do not see every deletion), and then follows
// the feeds from the stored position, as the running index would have: merges
// after it, customers whose tags changed, events processed since. A
// checkpoint is thus exactly a state the live index was in, and replaying
// the feeds is what the live index does every second.
//
// Bitmaps hold ordinals; the checkpoint keeps the ids they stand for, and a
// start whose customers begin with the same ids (customers are never deleted
// and new ones are appended) uses the bitmaps as they are, else maps them.

const (
	// checkpointFormat changes when the stream's layout does; older
	// checkpoints are then ignored (and replaced).
	checkpointFormat = 1
	// checkpointEvery is how often a workspace's checkpoint is renewed; a
	// start replays at most about this much of the feeds.
	checkpointEvery = time.Hour
	// checkpointPart is the size of the stored parts.
	checkpointPart = 4 << 20
)

var checkpointMagic = []byte("SIYUACK\n")

// checkpoint is a decoded checkpoint.
type checkpoint struct {
	asOf        time.Time // the follow position it was taken at
	mergesAfter int64
	writtenAt   time.Time
	ids         []int64
	tags        map[int64]*roaring.Bitmap
	events      map[string]map[int32]*roaring.Bitmap
}

// checkpointMeta is the stored description of the current checkpoint.
type checkpointMeta struct {
	generation  int64
	format      int
	timezone    string
	asOf        int64
	mergesAfter int64
	size        int64
	writtenAt   int64
}

func readCheckpointMeta(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tenantID int64, lock string) (checkpointMeta, bool, error) {
	var m checkpointMeta
	err := q.QueryRowContext(ctx, `SELECT generation, format, timezone, as_of, merges_after, size, written_at
		FROM audience_checkpoints WHERE tenant_id = $1`+lock, tenantID).
		Scan(&m.generation, &m.format, &m.timezone, &m.asOf, &m.mergesAfter, &m.size, &m.writtenAt)
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("audience: unable to read the checkpoint: %w", err)
	}
	return m, true, nil
}

// encodeCheckpoint writes the tags and event days of x (read-locked by the
// caller) as a checkpoint stream.
func (x *Index) encodeCheckpoint() []byte {
	var buf bytes.Buffer
	buf.Write(checkpointMagic)
	var tmp [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { buf.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	varint := func(v int64) { buf.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	bitmap := func(b *roaring.Bitmap) {
		uvarint(b.GetSerializedSizeInBytes())
		b.WriteTo(&buf)
	}
	uvarint(uint64(len(x.ids)))
	var prev int64
	for _, id := range x.ids {
		varint(id - prev)
		prev = id
	}
	tags := slices.Sorted(maps.Keys(x.tags))
	uvarint(uint64(len(tags)))
	for _, t := range tags {
		varint(t)
		bitmap(x.tags[t])
	}
	names := slices.Sorted(maps.Keys(x.events))
	uvarint(uint64(len(names)))
	for _, name := range names {
		uvarint(uint64(len(name)))
		buf.WriteString(name)
		days := x.events[name]
		ds := slices.Sorted(maps.Keys(days))
		uvarint(uint64(len(ds)))
		for _, d := range ds {
			varint(int64(d))
			bitmap(days[d])
		}
	}
	binary.LittleEndian.PutUint32(tmp[:4], crc32.ChecksumIEEE(buf.Bytes()))
	buf.Write(tmp[:4])
	return buf.Bytes()
}

// decodeCheckpoint reads a checkpoint stream of the given size.
func decodeCheckpoint(r io.Reader, size int64) (*checkpoint, error) {
	if size < int64(len(checkpointMagic))+4 {
		return nil, errors.New("checkpoint too short")
	}
	crc := crc32.NewIEEE()
	body := bufio.NewReaderSize(io.TeeReader(io.LimitReader(r, size-4), crc), 1<<20)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(body, magic); err != nil || !bytes.Equal(magic, checkpointMagic) {
		return nil, errors.New("not a checkpoint")
	}
	// Counts are bounded by what the remaining bytes could hold, so damaged
	// input cannot ask for huge allocations.
	count := func() (int, error) {
		n, err := binary.ReadUvarint(body)
		if err == nil && n > uint64(size) {
			err = errors.New("count out of range")
		}
		return int(n), err
	}
	var buf []byte
	bitmap := func() (*roaring.Bitmap, error) {
		n, err := count()
		if err != nil {
			return nil, err
		}
		buf = slices.Grow(buf[:0], n)[:n]
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		b := roaring.New()
		if err := b.UnmarshalBinary(buf); err != nil {
			return nil, err
		}
		return b, nil
	}
	c := &checkpoint{tags: map[int64]*roaring.Bitmap{}, events: map[string]map[int32]*roaring.Bitmap{}}
	n, err := count()
	if err != nil {
		return nil, err
	}
	c.ids = make([]int64, n)
	var prev int64
	for i := range c.ids {
		d, err := binary.ReadVarint(body)
		if err != nil {
			return nil, err
		}
		prev += d
		c.ids[i] = prev
	}
	if n, err = count(); err != nil {
		return nil, err
	}
	for range n {
		t, err := binary.ReadVarint(body)
		if err != nil {
			return nil, err
		}
		if c.tags[t], err = bitmap(); err != nil {
			return nil, err
		}
	}
	if n, err = count(); err != nil {
		return nil, err
	}
	for range n {
		l, err := count()
		if err != nil {
			return nil, err
		}
		name := make([]byte, l)
		if _, err := io.ReadFull(body, name); err != nil {
			return nil, err
		}
		nd, err := count()
		if err != nil {
			return nil, err
		}
		days := make(map[int32]*roaring.Bitmap, nd)
		for range nd {
			d, err := binary.ReadVarint(body)
			if err != nil {
				return nil, err
			}
			if d < math.MinInt32 || d > math.MaxInt32 {
				return nil, errors.New("day out of range")
			}
			if days[int32(d)], err = bitmap(); err != nil {
				return nil, err
			}
		}
		c.events[string(name)] = days
	}
	if _, err := body.ReadByte(); err != io.EOF {
		return nil, errors.New("checkpoint longer than recorded")
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, errors.New("checkpoint checksum mismatch")
	}
	return c, nil
}

// partsReader reads a checkpoint's parts in order as one stream.
type partsReader struct {
	rows *sql.Rows
	cur  []byte
	err  error
}

func (p *partsReader) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if !p.rows.Next() {
			if p.err = p.rows.Err(); p.err == nil {
				p.err = io.EOF
			}
			continue
		}
		var seq int64
		if err := p.rows.Scan(&seq, &p.cur); err != nil {
			p.err = err
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// readCheckpoint returns the workspace's checkpoint, or nil when there is none
// that this index can use.
func (s *Service) readCheckpoint(ctx context.Context, tenantID int64, loc *time.Location) (*checkpoint, error) {
	m, ok, err := readCheckpointMeta(ctx, s.db, tenantID, "")
	if err != nil || !ok {
		return nil, err
	}
	if m.format != checkpointFormat || m.timezone != loc.String() {
		s.log.Info("audience index: the checkpoint does not fit; rebuilding in full", "tenant", tenantID, "format", m.format, "timezone", m.timezone)
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, data FROM audience_checkpoint_parts WHERE tenant_id = $1 AND generation = $2 ORDER BY seq`, tenantID, m.generation)
	if err != nil {
		return nil, fmt.Errorf("audience: unable to read the checkpoint: %w", err)
	}
	defer rows.Close()
	c, err := decodeCheckpoint(&partsReader{rows: rows}, m.size)
	if err != nil {
		return nil, fmt.Errorf("audience: unable to read the checkpoint: %w", err)
	}
	c.asOf, c.mergesAfter, c.writtenAt = db.FromMillis(m.asOf), m.mergesAfter, db.FromMillis(m.writtenAt)
	return c, nil
}

// apply puts the checkpoint's bitmaps into p, whose customers (ids) were just
// read; days before oldest are left out, as a build leaves them out.
func (c *checkpoint) apply(p *Index, ords idMap, oldest int32) {
	same := len(c.ids) <= len(p.ids) && slices.Equal(c.ids, p.ids[:len(c.ids)])
	var remap []uint32 // checkpoint ordinal → ordinal now; MaxUint32: gone
	if !same {
		remap = make([]uint32, len(c.ids))
		for i, id := range c.ids {
			remap[i] = math.MaxUint32
			if o, ok := ords.get(id); ok {
				remap[i] = o
			}
		}
	}
	conv := func(b *roaring.Bitmap) *roaring.Bitmap {
		if same {
			return b
		}
		// Both id lists ascend, so mapped ordinals stay in order.
		out := make([]uint32, 0, b.GetCardinality())
		it := b.Iterator()
		for it.HasNext() {
			if i := it.Next(); int(i) < len(remap) && remap[i] != math.MaxUint32 {
				out = append(out, remap[i])
			}
		}
		return roaring.BitmapOf(out...)
	}
	for t, b := range c.tags {
		p.tags[t] = conv(b)
	}
	for name, days := range c.events {
		m := make(map[int32]*roaring.Bitmap, len(days))
		for d, b := range days {
			if d >= oldest {
				m[d] = conv(b)
			}
		}
		p.events[name] = m
	}
}

// Checkpoint stores the workspace's index as a checkpoint now (the service
// renews it every hour by itself while Run runs).
func (s *Service) Checkpoint(ctx context.Context, tenantID int64) error {
	t, err := s.index(ctx, tenantID)
	if err != nil {
		return err
	}
	return s.writeCheckpoint(ctx, tenantID, t)
}

func (s *Service) writeCheckpoint(ctx context.Context, tenantID int64, t *tenantIndex) error {
	// The bitmaps and the feed position are taken together: no follow runs
	// in between.
	t.followMu.Lock()
	t.x.mu.RLock()
	data := t.x.encodeCheckpoint()
	asOf, mergesAfter := t.follow.since, t.follow.mergesAfter
	t.x.mu.RUnlock()
	t.followMu.Unlock()

	g, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return err
	}
	gen := g.Int64()
	// Parts go in their own small transactions, so writers are not held up;
	// the new generation only counts once the last step below names it.
	parts := 0
	for off := 0; off < len(data); off += checkpointPart {
		part := data[off:min(off+checkpointPart, len(data))]
		if _, err := s.db.ExecContext(ctx, `INSERT INTO audience_checkpoint_parts (tenant_id, generation, seq, data) VALUES ($1, $2, $3, $4)`,
			tenantID, gen, parts, part); err != nil {
			return fmt.Errorf("audience: unable to write the checkpoint: %w", err)
		}
		parts++
	}
	lock := ""
	if s.db.Dialect == db.Postgres {
		lock = " FOR UPDATE"
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Another node's switch deletes the parts of any generation but its
		// own: make sure all of ours are still there, under the row lock that
		// orders switches.
		_, had, err := readCheckpointMeta(ctx, tx, tenantID, lock)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audience_checkpoint_parts WHERE tenant_id = $1 AND generation = $2`, tenantID, gen).Scan(&n); err != nil {
			return err
		}
		if n != parts {
			return errors.New("another node replaced the checkpoint meanwhile")
		}
		args := []any{tenantID, gen, checkpointFormat, t.loc.String(), db.Millis(asOf), mergesAfter, len(data), db.Millis(s.now())}
		if had {
			_, err = tx.ExecContext(ctx, `UPDATE audience_checkpoints SET generation = $2, format = $3, timezone = $4, as_of = $5,
				merges_after = $6, size = $7, written_at = $8 WHERE tenant_id = $1`, args...)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO audience_checkpoints (tenant_id, generation, format, timezone, as_of, merges_after, size, written_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM audience_checkpoint_parts WHERE tenant_id = $1 AND generation <> $2`, tenantID, gen)
		return err
	})
	if err != nil {
		_, _ = s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM audience_checkpoint_parts WHERE tenant_id = $1 AND generation = $2`, tenantID, gen)
		return fmt.Errorf("audience: unable to write the checkpoint: %w", err)
	}
	t.mu.Lock()
	t.checkpointAt = s.now()
	t.mu.Unlock()
	s.log.Info("audience index: checkpoint written", "tenant", tenantID, "bytes", len(data), "as_of", asOf)
	return nil
}

// maybeCheckpoint renews the workspace's checkpoint in the background when it
// is due: every checkpointEvery, counted from the last one any node wrote.
func (s *Service) maybeCheckpoint(ctx context.Context, tenantID int64, t *tenantIndex) {
	if s.feeds.Profiles == nil {
		return // without the merge feed a checkpoint could not be caught up
	}
	t.mu.Lock()
	due := !t.checkpointing && s.now().Sub(t.checkpointAt) >= checkpointEvery
	if due {
		t.checkpointing = true
	}
	t.mu.Unlock()
	if !due {
		return
	}
	s.background.Go(func() {
		defer func() {
			t.mu.Lock()
			t.checkpointing = false
			t.mu.Unlock()
		}()
		s.writing.Lock()
		defer s.writing.Unlock()
		// Another node sharing the database may have written one.
		m, ok, err := readCheckpointMeta(ctx, s.db, tenantID, "")
		if err == nil && ok && m.format == checkpointFormat && s.now().Sub(db.FromMillis(m.writtenAt)) < checkpointEvery {
			t.mu.Lock()
			t.checkpointAt = db.FromMillis(m.writtenAt)
			t.mu.Unlock()
			return
		}
		if err == nil {
			err = s.writeCheckpoint(ctx, tenantID, t)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("audience: checkpoint failed; will retry", "tenant", tenantID, "err", err)
			t.mu.Lock()
			t.checkpointAt = s.now().Add(-checkpointEvery + time.Minute) // retry in a minute
			t.mu.Unlock()
		}
	})
}
