package registrytest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry/registrytest"
)

func TestStartTwo(t *testing.T) {
	a, b := registrytest.Start(t), registrytest.Start(t)
	assert.NotEqual(t, a, b)
	for _, host := range []string{a, b} {
		resp, err := http.Get("http://" + host + "/v2/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

func TestMemory(t *testing.T) {
	resp, err := http.Get("http://" + registrytest.Memory(t) + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
