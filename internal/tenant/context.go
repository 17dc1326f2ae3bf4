package tenant

import "context"

type ctxKey int

const (
	metaKey ctxKey = iota
	principalKey
)

// WithRequestMeta returns ctx carrying where the request came from.
func WithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, metaKey, m)
}

// RequestMetaFrom returns the request's origin set by WithRequestMeta.
func RequestMetaFrom(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(metaKey).(RequestMeta)
	return m
}

// WithPrincipal returns ctx carrying the authenticated principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the principal set by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok && p.TenantID != 0
}
