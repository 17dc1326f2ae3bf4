// Package handover: staff handover (在职转接 / 离职继承): moving customers and groups from one staff member to another through WeCom, with the 2-transfers-in-90-days rule checked first and results followed until final.
package handover

// Service is the handover domain.
type Service struct{}
