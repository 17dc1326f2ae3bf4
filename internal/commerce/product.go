package commerce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
)

// ProductStatus says whether a product is offered.
type ProductStatus string

// Product statuses.
const (
	ProductActive   ProductStatus = "active"
	ProductArchived ProductStatus = "archived" // deleted: kept for the orders that name it
)

// Product is one SKU of the brand's catalogue.
type Product struct {
	SKU       string        `json:"sku" doc:"The brand's stock-keeping unit, unique in the workspace."`
	Name      string        `json:"name"`
	Category  string        `json:"category"`
	PriceFen  int64         `json:"price_fen" doc:"List price in fen (分): integer, 100 fen = ¥1."`
	Currency  string        `json:"currency" doc:"Always CNY for now."`
	Status    ProductStatus `json:"status" enum:"active,archived" doc:"archived products are deleted from the catalogue but kept for the orders that name them."`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// ProductInput is the input to PutProduct.
type ProductInput struct {
	SKU      string
	Name     string
	Category string
	PriceFen int64
	Currency string        // "" means CNY
	Status   ProductStatus // "" means active
}

func (in ProductInput) normalize() (ProductInput, error) {
	var err error
	if in.SKU, err = key("sku", "invalid_sku", in.SKU); err != nil {
		return in, err
	}
	if in.Name, err = text("name", in.Name, 200, true); err != nil {
		return in, err
	}
	if in.Category, err = text("category", in.Category, 100, false); err != nil {
		return in, err
	}
	if err := amount("price_fen", in.PriceFen, MaxUnitPriceFen); err != nil {
		return in, err
	}
	if in.Currency, err = currency("currency", in.Currency); err != nil {
		return in, err
	}
	switch in.Status {
	case "":
		in.Status = ProductActive
	case ProductActive, ProductArchived:
	default:
		return in, errs.Field("status", "invalid_status", "product status must be active or archived")
	}
	return in, nil
}

const productCols = `sku, name, category, price_fen, currency, status, created_at, updated_at`

func scanProduct(row interface{ Scan(...any) error }) (Product, error) {
	var p Product
	var status string
	var created, updated int64
	err := row.Scan(&p.SKU, &p.Name, &p.Category, &p.PriceFen, &p.Currency, &status, &created, &updated)
	p.Status, p.CreatedAt, p.UpdatedAt = ProductStatus(status), db.FromMillis(created), db.FromMillis(updated)
	return p, err
}

// PutProduct creates or replaces the product with in.SKU. Putting the same
// product again changes nothing (not even updated_at); putting an archived
// product with status active restores it. created reports a new SKU.
func (s *Service) PutProduct(ctx context.Context, tenantID int64, in ProductInput) (p Product, created bool, err error) {
	if in, err = in.normalize(); err != nil {
		return Product{}, false, err
	}
	now := db.Millis(s.now())
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Twice at most: a first INSERT that loses a race finds the row the
		// second time round.
		for range 2 {
			old, err := scanProduct(tx.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE tenant_id = $1 AND sku = $2`+s.forUpdate(), tenantID, in.SKU))
			if errors.Is(err, sql.ErrNoRows) {
				res, err := tx.ExecContext(ctx,
					`INSERT INTO products (tenant_id, sku, name, category, price_fen, currency, status, created_at, updated_at)
					 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (tenant_id, sku) DO NOTHING`,
					tenantID, in.SKU, in.Name, in.Category, in.PriceFen, in.Currency, string(in.Status), now)
				if err != nil {
					return fmt.Errorf("commerce: unable to insert product %q: %w", in.SKU, err)
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue // inserted concurrently: update that one
				}
				created = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("commerce: unable to fetch product %q: %w", in.SKU, err)
			}
			if old.Name == in.Name && old.Category == in.Category && old.PriceFen == in.PriceFen && old.Currency == in.Currency && old.Status == in.Status {
				return nil
			}
			_, err = tx.ExecContext(ctx,
				`UPDATE products SET name = $3, category = $4, price_fen = $5, currency = $6, status = $7, updated_at = $8 WHERE tenant_id = $1 AND sku = $2`,
				tenantID, in.SKU, in.Name, in.Category, in.PriceFen, in.Currency, string(in.Status), now)
			if err != nil {
				return fmt.Errorf("commerce: unable to update product %q: %w", in.SKU, err)
			}
			return nil
		}
		return fmt.Errorf("commerce: product %q neither inserted nor found", in.SKU)
	})
	if err != nil {
		return Product{}, false, err
	}
	p, err = s.Product(ctx, tenantID, in.SKU)
	return p, created, err
}

// Product returns the product with the given SKU, archived or not.
func (s *Service) Product(ctx context.Context, tenantID int64, sku string) (Product, error) {
	p, err := scanProduct(s.db.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE tenant_id = $1 AND sku = $2`, tenantID, strings.TrimSpace(sku)))
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, errs.NotFoundf("product", "no product has SKU %q", sku)
	}
	if err != nil {
		return Product{}, fmt.Errorf("commerce: unable to fetch product %q: %w", sku, err)
	}
	return p, nil
}

// ArchiveProduct deletes a product from the catalogue, keeping its row for the
// orders that name it. Archiving an archived product changes nothing.
func (s *Service) ArchiveProduct(ctx context.Context, tenantID int64, sku string) (Product, error) {
	sku = strings.TrimSpace(sku)
	_, err := s.db.ExecContext(ctx, `UPDATE products SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND sku = $2 AND status <> $3`,
		tenantID, sku, string(ProductArchived), db.Millis(s.now()))
	if err != nil {
		return Product{}, fmt.Errorf("commerce: unable to archive product %q: %w", sku, err)
	}
	return s.Product(ctx, tenantID, sku)
}

// ProductQuery filters a product list.
type ProductQuery struct {
	Status   ProductStatus // "" means every status
	Category string        // exact category; "" means any
}

// Products lists products by SKU.
func (s *Service) Products(ctx context.Context, tenantID int64, q ProductQuery, r page.Request) (page.Page[Product], error) {
	where := []string{"tenant_id = $1"}
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if r.Cursor != "" {
		var after string
		if err := page.Decode(r.Cursor, &after); err != nil {
			return page.Page[Product]{}, err
		}
		where = append(where, "sku > "+arg(after))
	}
	switch q.Status {
	case "":
	case ProductActive, ProductArchived:
		where = append(where, "status = "+arg(string(q.Status)))
	default:
		return page.Page[Product]{}, errs.Field("status", "invalid_status", "product status must be active or archived")
	}
	if q.Category != "" {
		where = append(where, "category = "+arg(q.Category))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+productCols+` FROM products WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY sku LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[Product]{}, fmt.Errorf("commerce: unable to list products: %w", err)
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return page.Page[Product]{}, fmt.Errorf("commerce: unable to read product: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Product]{}, fmt.Errorf("commerce: unable to list products: %w", err)
	}
	return page.Trim(out, r, func(p Product) string { return page.Encode(p.SKU) }), nil
}
