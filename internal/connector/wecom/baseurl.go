package wecom

// DefaultBaseURL is WeCom's API.
const DefaultBaseURL = "https://qyapi.weixin.qq.com"
