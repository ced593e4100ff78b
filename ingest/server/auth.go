package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
)

const keyContextKey = "sigfollow.apikey"

// authenticate answers 503 at once while NATS is down, resolves the Bearer
// key (401 if missing or unknown), checks the phone number id in the path
// (400 if not digits) and the key's right to it (403 without messages:send
// or for another number), all before the body is read.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.queueDown(); err != nil {
			return err
		}
		token, _ := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		key, err := s.auth.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		phone := c.Param("phoneNumberId")
		if !job.ValidPhoneNumberID(phone) {
			return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidPhoneNumber,
				Message: "the phone number id in the path must be Meta's numeric id (digits only)"}
		}
		if !key.HasScope(apikey.ScopeMessagesSend) {
			return &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "this API key lacks the " + apikey.ScopeMessagesSend + " scope"}
		}
		if !key.AllowsPhoneNumber(phone) {
			return &apiError{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "this API key is not allowed to act for phone number id " + phone}
		}
		c.Set(keyContextKey, key)
		return next(c)
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
