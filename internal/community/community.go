// Package community: customer groups (社群): groups and their members linked to customer profiles, group tags, group codes that open new groups when one fills, group welcome templates, statistics.
package community

// Service is the community domain.
type Service struct{}
