package wecom

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/siyu-dev/siyu/internal/errs"
)

// WeCom error codes the client and the connector act on. The full list is
// WeCom's 全局错误码 (developer.work.weixin.qq.com/document/path/90313).
const (
	CodeBusy                = -1     // system busy; retry later
	CodeInvalidSecret       = 40001  // invalid secret (gettoken) or credential
	CodeInvalidUserID       = 40003  // the userid is not in the directory
	CodeInvalidCorpID       = 40013  // invalid corp ID
	CodeInvalidToken        = 40014  // invalid access_token
	CodeChatNotFound        = 40050  // chat_id does not exist
	CodeInvalidParam        = 40058  // a parameter is invalid (e.g. limit over the maximum)
	CodeInvalidTagID        = 40068  // tag or tag group ID does not exist
	CodeTagNameExists       = 40071  // the tag name is taken in that group
	CodeSecretMismatch      = 40091  // the secret belongs to another corp or app
	CodeInvalidExternalUser = 40096  // invalid external_userid
	CodeTooManyTags         = 40126  // the corp has 3,000 tags already
	CodeTransferTooOften    = 40128  // a customer may be transferred twice per 90 days
	CodeTransferInProgress  = 40129  // the customer is being transferred
	CodeMissingToken        = 41001  // access_token missing
	CodeInvalidContactWay   = 41044  // invalid 联系我 config_id
	CodeMissingWelcomeCode  = 41049  // welcome_code missing
	CodeWelcomeCodeInvalid  = 41050  // welcome code unknown, used, or past its 20 s window
	CodeWelcomeChatStarted  = 41051  // the customer and the staff member already chatted
	CodeTokenExpired        = 42001  // access_token expired
	CodeRequirePOST         = 43002  // the API needs POST
	CodeRateLimited         = 45009  // API call frequency over the limit
	CodeConcurrencyLimited  = 45033  // API concurrency over the limit
	CodeForbidden           = 48002  // the app may not call this API
	CodeChatDismissed       = 49008  // the group was dismissed
	CodeAppDisabled         = 50003  // the app is disabled
	CodeInvalidCursor       = 50100  // invalid pagination cursor
	CodeNoPrivilege         = 60011  // the member/department is outside the app's visible range
	CodeIPNotAllowed        = 60020  // the caller's IP is not in the app's trusted IP list
	CodeUserNotFound        = 60111  // userid does not exist
	CodeNotExternalContact  = 84061  // no external-contact relation
	CodeNoContactPermission = 84074  // no external-contact permission
	CodeInvalidMiniProgram  = 90207  // invalid mini-program appid
	CodeNoInteropLicense    = 701008 // the member has no interop (互通) account license
)

// APIError is an error answer (errcode ≠ 0) from a WeCom API.
type APIError struct {
	Code int    // WeCom's errcode
	Msg  string // WeCom's errmsg, for logs; it carries a hint ID support asks for
	API  string // the API path after /cgi-bin/, e.g. "externalcontact/batch/get_by_user"
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wecom: %s: errcode %d: %s", e.API, e.Code, e.Msg)
}

// Unwrap exposes an *errs.Error carrying the plain-language explanation, so the
// API and console show the operator what went wrong and how to fix it.
func (e *APIError) Unwrap() error {
	return &errs.Error{Kind: kindOf(e.Code), Code: "wecom_" + strconv.Itoa(e.Code), Message: Explain(e.Code)}
}

// ErrorCode returns the WeCom errcode in err's chain, or 0 when err is not a WeCom API error.
func ErrorCode(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsCode reports whether err is a WeCom API error with one of the codes.
func IsCode(err error, codes ...int) bool {
	c := ErrorCode(err)
	if c == 0 {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// kindOf maps a WeCom code to the kind the HTTP layer shows: rate limits are
// RateLimited, missing things NotFound, and everything else Invalid — an
// operator can act on the explanation, so it must not be hidden as Internal.
func kindOf(code int) errs.Kind {
	switch code {
	case CodeRateLimited, CodeConcurrencyLimited:
		return errs.RateLimited
	case CodeChatNotFound, CodeInvalidTagID, CodeNotExternalContact, CodeUserNotFound, CodeInvalidUserID, CodeChatDismissed:
		return errs.NotFound
	case CodeBusy:
		return errs.Internal
	}
	return errs.Invalid
}

// isTokenCode reports codes after which a fresh access token may succeed.
func isTokenCode(code int) bool {
	return code == CodeInvalidToken || code == CodeTokenExpired || code == CodeInvalidSecret
}

// isRateCode reports frequency limits: WeCom rejected the call before doing
// anything, so retrying after a pause is safe for writes as well.
func isRateCode(code int) bool {
	return code == CodeRateLimited || code == CodeConcurrencyLimited
}

// Explain returns a plain-language explanation of a WeCom error code with the
// fix, for the console's connection test and error messages.
func Explain(code int) string {
	if s, ok := explanations[code]; ok {
		return s
	}
	return fmt.Sprintf("WeCom answered with error %d. Look it up at https://open.work.weixin.qq.com/devtool/query?e=%d.", code, code)
}

var explanations = map[int]string{
	CodeBusy: "WeCom is busy. Siyu retries reads by itself; try again in a minute.",
	CodeInvalidSecret: "The secret is wrong or was reset. Copy the app's secret again from 应用管理 → your self-built app → Secret " +
		"(the system 客户联系 secret can no longer call these APIs for new corps) and save the settings.",
	CodeInvalidUserID: "A member's userid is not in the WeCom directory, or is outside the app's visible range (可见范围).",
	CodeInvalidCorpID: "The corp ID is wrong. Copy it from 我的企业 → 企业信息 → 企业ID in the WeCom admin console.",
	CodeInvalidToken:  "The access token is invalid, usually because the secret was reset. Siyu fetches a new one; if this persists, check the secret.",
	CodeChatNotFound:  "The customer group does not exist (any more), or it is not owned by a member the app can see.",
	CodeInvalidParam:  "WeCom rejected a parameter as invalid (for example a page size over the maximum). This is a bug in Siyu; please report it.",
	CodeInvalidTagID:  "The corp tag or tag group does not exist any more; it was probably deleted in WeCom. Run a tag sync.",
	CodeTagNameExists: "A corp tag with this name already exists in the tag group. Choose another name or bind the existing tag.",
	CodeSecretMismatch: "The secret does not belong to this corp or app. Check that the corp ID and the app's secret come from the same " +
		"WeCom corp (应用管理 → your app → Secret).",
	CodeInvalidExternalUser: "The external_userid is not valid for this corp or app.",
	CodeTooManyTags:         "The corp has reached WeCom's limit of 3,000 corp tags. Delete unused tags in WeCom or in Siyu first.",
	CodeTransferTooOften:    "This customer cannot be transferred now: WeCom allows a customer to be transferred at most twice in 90 days.",
	CodeTransferInProgress:  "This customer is already being transferred; wait for the current transfer to finish.",
	CodeMissingToken:        "The request had no access token. This is a bug in Siyu; please report it.",
	CodeInvalidContactWay:   "The channel code (联系我 config_id) does not exist in WeCom any more; it may have been deleted there. Recreate the code.",
	CodeMissingWelcomeCode:  "The welcome message had no welcome code. This is a bug in Siyu; please report it.",
	CodeWelcomeCodeInvalid:  "The welcome code is no longer valid: WeCom accepts a welcome message only within 20 seconds of the add, once.",
	CodeWelcomeChatStarted:  "The customer and the staff member have already started chatting, so WeCom no longer accepts a welcome message.",
	CodeTokenExpired:        "The access token expired. Siyu fetches a new one by itself.",
	CodeRequirePOST:         "WeCom expects a POST request for this API. This is a bug in Siyu; please report it.",
	CodeRateLimited: "WeCom's call frequency limit was reached (per API and corp: 10,000 a minute, 150,000 an hour). " +
		"Siyu waits and retries; a blocked API is released after the limit's window (up to an hour).",
	CodeConcurrencyLimited: "Too many concurrent calls to the same WeCom API. Siyu waits and retries.",
	CodeForbidden: "The app may not call this API. In the WeCom admin console open 客户联系 → 客户 → API and add your self-built app " +
		"to 可调用应用, and make sure the app has the 客户联系 permission.",
	CodeChatDismissed: "The customer group was dismissed.",
	CodeAppDisabled:   "The app is disabled. Enable it again in 应用管理 in the WeCom admin console.",
	CodeInvalidCursor: "The pagination cursor expired. Siyu restarts the listing.",
	CodeNoPrivilege: "The member or department is outside the app's visible range. In 应用管理 → your app → 可见范围, " +
		"include the staff who serve customers (or the whole corp).",
	CodeIPNotAllowed: "Siyu's server IP is not in the app's trusted IP list. In the WeCom admin console open 应用管理 → your " +
		"self-built app → 企业可信IP, add the public IP address Siyu connects from, and test again.",
	CodeUserNotFound:        "The member does not exist in the WeCom directory (any more).",
	CodeNotExternalContact:  "There is no customer relation between this staff member and this customer (any more): one of them deleted the other.",
	CodeNoContactPermission: "The member has no customer-contact permission. Add them in 客户联系 → 权限配置 → 使用范围.",
	CodeInvalidMiniProgram:  "The mini-program appid is invalid. Check the appid and that the mini program is linked to the corp (应用管理 → 小程序).",
	CodeNoInteropLicense: "The staff member has no interop account license (互通账号), which WeCom requires for customer-contact " +
		"APIs. Buy or assign a license in 应用管理 → 接口许可, or choose another staff member.",
}
