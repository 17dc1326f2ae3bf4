// Package moment: moments (朋友圈) tasks: posts that chosen staff publish to the customers they choose by tag, through WeCom add_moment_task, with results per staff.
package moment

// Service is the moment domain.
type Service struct{}
