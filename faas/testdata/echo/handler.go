// Package function is the runtime tests' fixture: it echoes the request body
// after $GREETING, or with ?secret=NAME returns that secret's file content.
package function

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	handler "github.com/openfaas/templates-sdk/go-http"
)

// Handle answers "<GREETING> <body>".
func Handle(req handler.Request) (handler.Response, error) {
	q, _ := url.ParseQuery(req.QueryString)
	if name := q.Get("secret"); name != "" {
		v, err := os.ReadFile(filepath.Join(os.Getenv("SECRET_MOUNT_PATH"), filepath.Base(name)))
		if err != nil {
			return handler.Response{StatusCode: http.StatusNotFound, Body: []byte(err.Error())}, nil
		}
		return handler.Response{StatusCode: http.StatusOK, Body: v}, nil
	}
	return handler.Response{
		StatusCode: http.StatusOK,
		Body:       []byte(os.Getenv("GREETING") + " " + string(req.Body)),
	}, nil
}
