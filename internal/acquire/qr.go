package acquire

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // WeCom serves some QR images as JPEG
	"image/png"
	"io"
	"net/http"

	"github.com/siyu-dev/siyu/internal/errs"
)

// PrintSize is a QR print size at 300 dpi.
type PrintSize struct {
	Name   string // e.g. "8cm"
	Pixels int
}

// PrintSizes are the sizes offered for download: table tents, posters and
// banners at 300 dpi (8 cm = 945 px, 15 cm = 1,772 px, 50 cm = 5,906 px).
func PrintSizes() []PrintSize {
	return []PrintSize{{"8cm", 945}, {"15cm", 1772}, {"50cm", 5906}}
}

// SizePixels returns the pixel size of a named print size.
func SizePixels(name string) (int, bool) {
	for _, p := range PrintSizes() {
		if p.Name == name {
			return p.Pixels, true
		}
	}
	return 0, false
}

const maxQRBytes = 4 << 20

// QR returns the code's QR image as WeCom made it. It is fetched from the
// qr_code URL once and cached in the database.
func (s *Service) QR(ctx context.Context, tenantID, id int64) ([]byte, error) {
	var img []byte
	var url string
	if err := s.db.QueryRowContext(ctx, `SELECT qr_png, qr_code FROM acquire_codes WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&img, &url); err != nil {
		if _, gerr := s.code(ctx, s.db, tenantID, id, false); gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("acquire: unable to read the QR of code %d: %w", id, err)
	}
	if len(img) > 0 {
		return img, nil
	}
	if url == "" {
		return nil, errs.E(errs.NotFound, "qr_not_found", "channel code %d has no QR image", id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("acquire: bad QR URL %q: %w", url, err)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return nil, errs.E(errs.Internal, "qr_unavailable", "the QR image could not be fetched from WeCom; try again")
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, errs.E(errs.Internal, "qr_unavailable", "WeCom answered %d for the QR image; try again", res.StatusCode)
	}
	img, err = io.ReadAll(io.LimitReader(res.Body, maxQRBytes))
	if err != nil {
		return nil, fmt.Errorf("acquire: unable to read the QR image: %w", err)
	}
	if _, _, err := image.DecodeConfig(bytes.NewReader(img)); err != nil {
		return nil, errs.E(errs.Internal, "qr_unreadable", "WeCom's QR image could not be read: %v", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE acquire_codes SET qr_png = $3 WHERE tenant_id = $1 AND id = $2`, tenantID, id, img); err != nil {
		return nil, fmt.Errorf("acquire: unable to cache the QR image: %w", err)
	}
	return img, nil
}

// QRPrint returns the code's QR as a black-and-white PNG px pixels square:
// the module grid is read from WeCom's image and drawn again with whole
// pixels per module and a quiet zone of four modules, so it stays sharp at
// any size. An image whose grid cannot be read is scaled nearest-neighbour.
func (s *Service) QRPrint(ctx context.Context, tenantID, id int64, px int) ([]byte, error) {
	if px < 64 || px > 8000 {
		return nil, errs.Field("size", "invalid_size", "a QR print size is 64–8,000 pixels, not %d", px)
	}
	raw, err := s.QR(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	src, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("acquire: unable to decode the QR image: %w", err)
	}
	var out *image.Paletted
	if grid := readGrid(src); grid != nil {
		out = drawGrid(grid, px)
	} else {
		out = scaleNearest(src, px)
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, out); err != nil {
		return nil, fmt.Errorf("acquire: unable to encode the QR: %w", err)
	}
	return b.Bytes(), nil
}

var bw = color.Palette{color.White, color.Black}

func dark(c color.Color) bool {
	y := color.GrayModel.Convert(c).(color.Gray).Y
	return y < 128
}

// readGrid finds the module grid of a QR image: the dark area's bounding
// box, the module size as the shortest run, and the modules sampled at
// their centres. It returns nil unless the grid redraws the image closely.
func readGrid(img image.Image) [][]bool {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 21 || h < 21 || w > 4000 || h > 4000 {
		return nil
	}
	px := make([][]bool, h)
	minX, minY, maxX, maxY := w, h, -1, -1
	for y := 0; y < h; y++ {
		px[y] = make([]bool, w)
		for x := 0; x < w; x++ {
			if dark(img.At(b.Min.X+x, b.Min.Y+y)) {
				px[y][x] = true
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	if maxX < 0 {
		return nil
	}
	bw, bh := maxX-minX+1, maxY-minY+1
	// Shortest run over the box's rows: one module.
	run := bw
	for y := minY; y <= maxY; y++ {
		n := 1
		for x := minX + 1; x <= maxX+1; x++ {
			if x <= maxX && px[y][x] == px[y][x-1] {
				n++
				continue
			}
			run = min(run, n)
			n = 1
		}
	}
	if run < 1 {
		return nil
	}
	n := (bw + run/2) / run
	if n < 21 || n > 177 || (bh+run/2)/run != n {
		return nil
	}
	m := float64(bw) / float64(n)
	grid := make([][]bool, n)
	for j := 0; j < n; j++ {
		grid[j] = make([]bool, n)
		for i := 0; i < n; i++ {
			grid[j][i] = px[minY+int((float64(j)+0.5)*m)][minX+int((float64(i)+0.5)*m)]
		}
	}
	// The grid must redraw the box: at most 3% of its pixels differ.
	diff := 0
	for y := minY; y <= maxY; y++ {
		for x := minX; x <= maxX; x++ {
			j, i := min(int(float64(y-minY)/m), n-1), min(int(float64(x-minX)/m), n-1)
			if grid[j][i] != px[y][x] {
				diff++
			}
		}
	}
	if diff*100 > bw*bh*3 {
		return nil
	}
	return grid
}

// drawGrid draws modules with whole pixels each, centred with a quiet zone
// of at least four modules.
func drawGrid(grid [][]bool, px int) *image.Paletted {
	n := len(grid)
	k := max(px/(n+8), 1)
	off := (px - k*n) / 2
	out := image.NewPaletted(image.Rect(0, 0, px, px), bw)
	for j := 0; j < n; j++ {
		for i := 0; i < n; i++ {
			if !grid[j][i] {
				continue
			}
			for y := off + j*k; y < off+(j+1)*k && y < px; y++ {
				row := out.Pix[y*out.Stride:]
				for x := off + i*k; x < off+(i+1)*k && x < px; x++ {
					row[x] = 1
				}
			}
		}
	}
	return out
}

// scaleNearest scales any image to px square, nearest-neighbour, in black
// and white.
func scaleNearest(img image.Image, px int) *image.Paletted {
	b := img.Bounds()
	out := image.NewPaletted(image.Rect(0, 0, px, px), bw)
	for y := 0; y < px; y++ {
		sy := b.Min.Y + y*b.Dy()/px
		for x := 0; x < px; x++ {
			if dark(img.At(b.Min.X+x*b.Dx()/px, sy)) {
				out.Pix[y*out.Stride+x] = 1
			}
		}
	}
	return out
}
