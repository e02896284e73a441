package registry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/celpolicy/celpolicy/registry"
)

func ExampleClient_Image() {
	// A registry on loopback holding one image.
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: "amd64",
		Created: v1.Time{Time: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
		Config:  v1.Config{Labels: map[string]string{"team": "payments"}},
	})
	ref, _ := name.ParseReference(host + "/team/app:v1")
	_ = remote.Write(ref, img)

	c, err := registry.New(registry.WithVersion("1.0.0"), registry.WithKeychain(authn.NewMultiKeychain()))
	if err != nil {
		panic(err)
	}
	image, err := c.Image(context.Background(), host+"/team/app:v1")
	if err != nil {
		panic(err)
	}
	fmt.Println(image.Repository, image.Tag, image.Labels["team"], image.Platforms, image.Created.Format(time.DateOnly))
	// Output: team/app v1 payments [linux/amd64] 2024-06-01
}
