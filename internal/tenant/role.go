package tenant

import "github.com/siyu-dev/siyu/internal/errs"

// Role is what a user or API key may do in its workspace.
type Role string

// Roles, from most to least powerful.
const (
	RoleOwner    Role = "owner"    // 所有者: everything, including other owners
	RoleAdmin    Role = "admin"    // 管理员: users, keys, settings, connectors and all operations
	RoleOperator Role = "operator" // 运营: customers, tags, audiences, journeys, messages
	RoleStaff    Role = "staff"    // 员工 (导购/客服): their own customers and tasks
	RoleAnalyst  Role = "analyst"  // 分析师: read-only
)

// Roles lists every role, most powerful first.
func Roles() []Role {
	return []Role{RoleOwner, RoleAdmin, RoleOperator, RoleStaff, RoleAnalyst}
}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", errs.Field("role", "invalid_role", "unknown role %q (expected one of owner, admin, operator, staff, analyst)", s)
}

// rank orders roles for "may not grant more than you have" checks.
func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 5
	case RoleAdmin:
		return 4
	case RoleOperator:
		return 3
	case RoleStaff:
		return 2
	case RoleAnalyst:
		return 1
	}
	return 0
}

// Covers reports whether r is at least as powerful as other. Analyst and staff
// are not comparable in practice; rank orders them so that neither may grant
// operator.
func (r Role) Covers(other Role) bool { return r.rank() >= other.rank() }

// Permission names one thing a role may do. Every API operation and console
// page declares the permission it needs.
type Permission string

// Permissions. Later features add theirs here, with the roles that hold them.
const (
	PermWorkspaceRead   Permission = "workspace.read"   // see the console and workspace basics
	PermWorkspaceManage Permission = "workspace.manage" // change workspace settings
	PermUsersManage     Permission = "users.manage"     // invite, change roles, disable users
	PermAPIKeysManage   Permission = "apikeys.manage"   // create and revoke API keys
	PermAuditRead       Permission = "audit.read"       // read the audit log
	PermCustomersRead   Permission = "customers.read"   // list and view customers
	PermCustomersWrite  Permission = "customers.write"  // change customers, import
	PermPIIRead         Permission = "pii.read"         // see phone numbers unmasked
	PermStaffRead       Permission = "staff.read"       // list staff and stores
	PermStaffManage     Permission = "staff.manage"     // change staff and stores
	PermTagsRead        Permission = "tags.read"        // see tag groups, tags and who holds them
	PermTagsWrite       Permission = "tags.write"       // tag and untag a customer
	PermTagsManage      Permission = "tags.manage"      // define tag groups and tags, tag customers in bulk
)

// Connector permissions: owners and admins only (connectors carry secrets).
const (
	PermConnectorsRead   Permission = "connectors.read"   // see connector settings (secrets masked), sync status and callback logs
	PermConnectorsManage Permission = "connectors.manage" // connect WeCom and other channels, change their secrets, test and sync
)

// Operations permissions: acquisition, groups, reaching customers, handover.
const (
	PermAcquireRead     Permission = "acquire.read"     // see channel codes and their statistics
	PermAcquireManage   Permission = "acquire.manage"   // create and change channel codes and store codes
	PermCommunityRead   Permission = "community.read"   // see customer groups, members and statistics
	PermCommunityManage Permission = "community.manage" // group codes, group tags, group welcome templates
	PermMessagesRead    Permission = "messages.read"    // see mass messages, moments and their results
	PermMessagesSend    Permission = "messages.send"    // compose, schedule, cancel and remind mass messages and moments
	PermHandover        Permission = "staff.handover"   // move customers and groups between staff (on-job and resigned)
)

// Can reports whether role r holds permission p.
func (r Role) Can(p Permission) bool {
	switch r {
	case RoleOwner, RoleAdmin:
		return true
	case RoleOperator:
		switch p {
		case PermWorkspaceRead, PermCustomersRead, PermCustomersWrite, PermStaffRead,
			PermTagsRead, PermTagsWrite, PermTagsManage,
			PermAcquireRead, PermAcquireManage, PermCommunityRead, PermCommunityManage,
			PermMessagesRead, PermMessagesSend, PermHandover:
			return true
		}
	case RoleStaff:
		switch p {
		case PermWorkspaceRead, PermCustomersRead, PermStaffRead, PermTagsRead, PermTagsWrite,
			PermAcquireRead, PermCommunityRead, PermMessagesRead:
			return true
		}
	case RoleAnalyst:
		switch p {
		case PermWorkspaceRead, PermCustomersRead, PermStaffRead, PermAuditRead, PermTagsRead,
			PermAcquireRead, PermCommunityRead, PermMessagesRead:
			return true
		}
	}
	return false
}
