// Package acquire: channel codes (渠道活码): codes per source through WeCom add_contact_way, staff rotation with weights, schedules, daily caps and backups, tags, remarks and welcome messages on each add, store codes, attribution and statistics.
package acquire

// Service is the acquire domain.
type Service struct{}
