package importer

import (
	"fmt"

	"github.com/siyu-dev/siyu/internal/commerce"
)

// unit is what is written at once: a customer row, or the adjacent rows of
// one order. Its rows succeed or fail together.
type unit struct {
	rows     []int64
	errs     []RowError
	customer customerRow
	order    commerce.OrderInput
}

// units turns rows into units and units into batches of size. An order is
// complete when a row of another order (or the end of the file) follows, so
// batches always end on a unit boundary, and a resumed run, skipping the
// rows of committed batches, starts on one.
type units struct {
	pl    *plan
	size  int
	batch []unit
	open  []orderLine      // rows of the order being read
	done  map[string]int64 // order ids already complete → their first row
}

func newUnits(pl *plan, size int) *units {
	return &units{pl: pl, size: max(1, size), done: map[string]int64{}}
}

// add takes the next row and returns a full batch when one is complete.
func (u *units) add(r dataRow) []unit {
	if u.pl.kind != KindOrders {
		c, es := u.pl.customer(r)
		u.batch = append(u.batch, unit{rows: []int64{r.no}, errs: es, customer: c})
	} else {
		ln := u.pl.line(r)
		if len(u.open) > 0 && (ln.orderID == "" || ln.orderID != u.open[0].orderID) {
			u.closeOrder()
		}
		u.open = append(u.open, ln)
		if ln.orderID == "" {
			u.closeOrder()
		}
	}
	if len(u.batch) < u.size {
		return nil
	}
	b := u.batch
	u.batch = nil
	return b
}

// rest completes the last order and returns what is left.
func (u *units) rest() []unit {
	u.closeOrder()
	b := u.batch
	u.batch = nil
	return b
}

func (u *units) closeOrder() {
	if len(u.open) == 0 {
		return
	}
	lines := u.open
	u.open = nil
	un := unit{}
	for _, ln := range lines {
		un.rows = append(un.rows, ln.row)
	}
	id := lines[0].orderID
	if first, ok := u.done[id]; ok && id != "" {
		// A second run of rows would replace the items of the first.
		un.errs = []RowError{{Row: lines[0].row, Column: lines[0].columns["order_id"], Code: "order_rows_apart",
			Message: fmt.Sprintf("order %s also has rows from row %d: the rows of one order must be next to each other", id, first)}}
	} else {
		un.order, un.errs = u.pl.order(lines)
		if id != "" {
			u.done[id] = lines[0].row
		}
	}
	u.batch = append(u.batch, un)
}
