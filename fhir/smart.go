package fhir

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// smartConfiguration is the SMART App Launch 2.x discovery document, for
// Backend Services only: no authorization endpoint, no user launch.
type smartConfiguration struct {
	TokenEndpoint                 string   `json:"token_endpoint"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs  []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypesSupported           []string `json:"grant_types_supported"`
	ScopesSupported               []string `json:"scopes_supported"`
	Capabilities                  []string `json:"capabilities"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
	ResponseTypesSupported        []string `json:"response_types_supported"`
}

// handleSMARTConfiguration serves /.well-known/smart-configuration.
func handleSMARTConfiguration(t Tokens) echo.HandlerFunc {
	doc := smartConfiguration{
		TokenEndpoint:                 t.TokenURL(),
		TokenEndpointAuthMethods:      []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgs:  []string{"RS384", "ES384"},
		GrantTypesSupported:           []string{"client_credentials"},
		ScopesSupported:               []string{"system/*.rs", "system/*.read", "kap/episodes.write", "kap/episodes.read"},
		Capabilities:                  []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"},
		CodeChallengeMethodsSupported: []string{},
		ResponseTypesSupported:        []string{},
	}
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, doc)
	}
}
