// Command s3server is the lab's S3-compatible object store: gofakes3 (github.com/johannesboyne/gofakes3)
// over its bolt backend (every object in one bbolt file on disk), path-style only, behind
//
//   - AWS Signature Version 4 checking with one configured key pair (the Authorization header or a
//     presigned query string; the payload is checked against x-amz-content-sha256 when the client
//     signed its hash), which gofakes3 itself does not do;
//   - UploadPartCopy (PUT ?partNumber&uploadId with x-amz-copy-source), which gofakes3 lacks and CNCF
//     distribution's s3 driver calls to move a blob larger than multipartcopythresholdsize and to
//     resume an upload whose last part is under 5 MiB;
//   - /-/healthy, answered without credentials, for probes.
//
// Usage: s3server -listen :9000 -db /data/s3.db -bucket a -bucket b
// The key pair comes from the environment: S3SERVER_ACCESS_KEY and S3SERVER_SECRET_KEY.
// Multipart uploads in progress are held in memory (gofakes3's uploader) until completed.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

const (
	algorithm   = "AWS4-HMAC-SHA256"
	amzDate     = "20060102T150405Z"
	maxSkew     = 15 * time.Minute
	maxPresign  = 7 * 24 * time.Hour
	healthzPath = "/-/healthy"
)

type bucketList []string

func (b *bucketList) String() string { return strings.Join(*b, ",") }
func (b *bucketList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*b = append(*b, name)
		}
	}
	return nil
}

func main() {
	listen := flag.String("listen", ":9000", "address to serve on")
	dbPath := flag.String("db", "s3.db", "bbolt file holding every bucket and object")
	quiet := flag.Bool("quiet", false, "log nothing but errors")
	var buckets bucketList
	flag.Var(&buckets, "bucket", "bucket created at start when missing (repeat, or comma separated)")
	flag.Parse()

	accessKey, secretKey := os.Getenv("S3SERVER_ACCESS_KEY"), os.Getenv("S3SERVER_SECRET_KEY")
	if accessKey == "" || secretKey == "" {
		log.Fatal("s3server: S3SERVER_ACCESS_KEY and S3SERVER_SECRET_KEY must both be set")
	}
	// a replacement pod waits here for the one it replaces to close the file
	db, err := bolt.Open(*dbPath, 0o600, &bolt.Options{Timeout: 2 * time.Minute})
	if err != nil {
		log.Fatalf("s3server: open %s: %v", *dbPath, err)
	}
	backend := s3bolt.New(db)
	for _, name := range buckets {
		if err := gofakes3.ValidateBucketName(name); err != nil {
			log.Fatalf("s3server: bucket %q: %v", name, err)
		}
		exists, err := backend.BucketExists(name)
		if err == nil && !exists {
			err = backend.CreateBucket(name)
		}
		if err != nil {
			log.Fatalf("s3server: bucket %q: %v", name, err)
		}
	}
	// gofakes3 logs its errors and warnings; this server logs one line per request (-quiet: failures)
	fake := gofakes3.New(backend, gofakes3.WithoutVersioning(),
		gofakes3.WithLogger(gofakes3.StdLog(log.Default(), gofakes3.LogErr, gofakes3.LogWarn)))
	inner := fake.Server()
	handler := &server{
		auth:   &authenticator{accessKey: accessKey, secretKey: secretKey, now: time.Now},
		inner:  inner,
		copier: &partCopier{backend: backend, inner: inner},
		quiet:  *quiet,
	}
	srv := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 30 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("s3server: serving %s on %s (buckets: %s)", *dbPath, *listen, buckets.String())
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("s3server: %v", err)
	}
	if err := db.Close(); err != nil {
		log.Fatalf("s3server: close %s: %v", *dbPath, err)
	}
}

// server: health, then the signature, then UploadPartCopy or gofakes3.
type server struct {
	auth   *authenticator
	inner  http.Handler
	copier *partCopier
	quiet  bool
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == healthzPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if !s.quiet || rec.status >= 400 {
			log.Printf("%s %s -> %d", r.Method, r.URL.RequestURI(), rec.status)
		}
	}()
	if err := s.auth.check(r); err != nil {
		writeError(rec, err)
		return
	}
	if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" &&
		r.URL.Query().Get("uploadId") != "" && r.URL.Query().Get("partNumber") != "" {
		s.copier.ServeHTTP(rec, r)
		return
	}
	s.inner.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// s3Error is an S3 error response.
type s3Error struct {
	status  int
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, format string, args ...any) *s3Error {
	return &s3Error{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) {
	var e *s3Error
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	body, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"Error"`
		*s3Error
	}{s3Error: e})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// -- Signature Version 4 ---------------------------------------------------------------------

type authenticator struct {
	accessKey, secretKey string
	now                  func() time.Time
}

// signed is what a request claims: its credential scope, signed headers and signature.
type signed struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	amzDate                          time.Time
	payloadHash                      string
	presigned                        bool
}

func (a *authenticator) check(r *http.Request) error {
	claim, err := parseClaim(r)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(claim.accessKey), []byte(a.accessKey)) != 1 {
		return newError(http.StatusForbidden, "InvalidAccessKeyId",
			"The AWS Access Key Id you provided does not exist in our records.")
	}
	now := a.now().UTC()
	if claim.presigned {
		expires, err := strconv.Atoi(r.URL.Query().Get("X-Amz-Expires"))
		if err != nil || expires < 0 || time.Duration(expires)*time.Second > maxPresign {
			return newError(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires is invalid")
		}
		if now.After(claim.amzDate.Add(time.Duration(expires) * time.Second)) {
			return newError(http.StatusForbidden, "AccessDenied", "Request has expired")
		}
		if claim.amzDate.Sub(now) > maxSkew {
			return newError(http.StatusForbidden, "RequestTimeTooSkewed", "the request time is in the future")
		}
	} else if d := now.Sub(claim.amzDate); d > maxSkew || d < -maxSkew {
		return newError(http.StatusForbidden, "RequestTimeTooSkewed",
			"The difference between the request time and the current time is too large.")
	}
	if claim.date != claim.amzDate.Format("20060102") || claim.service != "s3" {
		return newError(http.StatusForbidden, "SignatureDoesNotMatch", "the credential scope does not match the request")
	}
	canonical, err := canonicalRequest(r, claim)
	if err != nil {
		return err
	}
	scope := strings.Join([]string{claim.date, claim.region, claim.service, "aws4_request"}, "/")
	digest := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{algorithm, claim.amzDate.Format(amzDate), scope, hex.EncodeToString(digest[:])}, "\n")
	key := hmacSHA256([]byte("AWS4"+a.secretKey), claim.date)
	for _, part := range []string{claim.region, claim.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if subtle.ConstantTimeCompare([]byte(want), []byte(claim.signature)) != 1 {
		return newError(http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided.")
	}
	if len(claim.payloadHash) == 64 && r.Body != nil && r.Body != http.NoBody {
		expected, err := hex.DecodeString(claim.payloadHash)
		if err != nil {
			return newError(http.StatusBadRequest, "InvalidArgument", "x-amz-content-sha256 is not hex")
		}
		r.Body = &verifyingBody{body: r.Body, hash: sha256.New(), want: expected}
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

func parseClaim(r *http.Request) (*signed, error) {
	query := r.URL.Query()
	claim := &signed{}
	var credential, headers, stamp string
	if header := r.Header.Get("Authorization"); header != "" {
		if !strings.HasPrefix(header, algorithm+" ") {
			return nil, newError(http.StatusBadRequest, "InvalidArgument", "only %s is accepted", algorithm)
		}
		for _, field := range strings.Split(strings.TrimPrefix(header, algorithm+" "), ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(field), "=")
			switch name {
			case "Credential":
				credential = value
			case "SignedHeaders":
				headers = value
			case "Signature":
				claim.signature = value
			}
		}
		stamp = r.Header.Get("X-Amz-Date")
		claim.payloadHash = r.Header.Get("X-Amz-Content-Sha256")
		if claim.payloadHash == "" {
			return nil, newError(http.StatusBadRequest, "InvalidRequest", "missing x-amz-content-sha256")
		}
	} else if query.Get("X-Amz-Algorithm") != "" {
		if query.Get("X-Amz-Algorithm") != algorithm {
			return nil, newError(http.StatusBadRequest, "AuthorizationQueryParametersError", "only %s is accepted", algorithm)
		}
		claim.presigned = true
		credential, headers, stamp = query.Get("X-Amz-Credential"), query.Get("X-Amz-SignedHeaders"), query.Get("X-Amz-Date")
		claim.signature = query.Get("X-Amz-Signature")
		claim.payloadHash = "UNSIGNED-PAYLOAD"
	} else {
		return nil, newError(http.StatusForbidden, "AccessDenied", "Access Denied (anonymous requests are refused)")
	}
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || headers == "" || claim.signature == "" {
		return nil, newError(http.StatusBadRequest, "AuthorizationHeaderMalformed", "malformed credential or signature")
	}
	claim.accessKey, claim.date, claim.region, claim.service = parts[0], parts[1], parts[2], parts[3]
	claim.signedHeaders = strings.Split(headers, ";")
	if !sort.StringsAreSorted(claim.signedHeaders) {
		return nil, newError(http.StatusBadRequest, "AuthorizationHeaderMalformed", "signed headers are not sorted")
	}
	when, err := time.Parse(amzDate, stamp)
	if err != nil {
		return nil, newError(http.StatusForbidden, "AccessDenied", "X-Amz-Date is missing or malformed")
	}
	claim.amzDate = when
	return claim, nil
}

// canonicalRequest: the request as Signature Version 4 signs it, for S3 (the path as sent,
// not escaped again).
func canonicalRequest(r *http.Request, claim *signed) (string, error) {
	rawPath := r.RequestURI
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		rawPath = rawPath[:i]
	}
	if rawPath == "" || rawPath == "*" {
		rawPath = "/"
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", newError(http.StatusBadRequest, "InvalidArgument", "malformed query string")
	}
	var query []string
	for name, list := range values {
		if claim.presigned && name == "X-Amz-Signature" {
			continue
		}
		for _, value := range list {
			query = append(query, uriEncode(name)+"="+uriEncode(value))
		}
	}
	sort.Strings(query)
	var headers strings.Builder
	for _, name := range claim.signedHeaders {
		var value string
		switch name {
		case "host":
			value = r.Host
		case "content-length":
			value = r.Header.Get("Content-Length")
			if value == "" && r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
				value = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			list := r.Header.Values(name)
			if name == "transfer-encoding" {
				list = r.TransferEncoding
			}
			trimmed := make([]string, len(list))
			for i, v := range list {
				trimmed[i] = strings.Join(strings.Fields(v), " ")
			}
			value = strings.Join(trimmed, ",")
		}
		headers.WriteString(name + ":" + value + "\n")
	}
	return strings.Join([]string{
		r.Method, rawPath, strings.Join(query, "&"), headers.String(),
		strings.Join(claim.signedHeaders, ";"), claim.payloadHash,
	}, "\n"), nil
}

// uriEncode: RFC 3986 unreserved characters as they are, every other byte %XX (upper case).
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// verifyingBody fails the read that reaches the end of a body whose SHA-256 is not the signed one,
// so the object is not stored.
type verifyingBody struct {
	body io.ReadCloser
	hash hash.Hash
	want []byte
}

func (v *verifyingBody) Read(p []byte) (int, error) {
	n, err := v.body.Read(p)
	v.hash.Write(p[:n])
	if err == io.EOF && !bytes.Equal(v.hash.Sum(nil), v.want) {
		return n, errors.New("XAmzContentSHA256Mismatch: the body does not match x-amz-content-sha256")
	}
	return n, err
}

func (v *verifyingBody) Close() error { return v.body.Close() }

// -- UploadPartCopy ---------------------------------------------------------------------------

type partCopier struct {
	backend gofakes3.Backend
	inner   http.Handler
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// ServeHTTP reads the source range and hands it to gofakes3 as an UploadPart of the same upload.
func (c *partCopier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	source, err := url.PathUnescape(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, "InvalidArgument", "x-amz-copy-source is malformed"))
		return
	}
	source, _, _ = strings.Cut(source, "?") // no versions here
	bucket, key, ok := strings.Cut(strings.TrimPrefix(source, "/"), "/")
	if !ok || bucket == "" || key == "" {
		writeError(w, newError(http.StatusBadRequest, "InvalidArgument", "x-amz-copy-source must be bucket/key"))
		return
	}
	var rng *gofakes3.ObjectRangeRequest
	if spec := r.Header.Get("X-Amz-Copy-Source-Range"); spec != "" {
		first, last, ok := strings.Cut(strings.TrimPrefix(spec, "bytes="), "-")
		start, err1 := strconv.ParseInt(first, 10, 64)
		end, err2 := strconv.ParseInt(last, 10, 64)
		if !ok || !strings.HasPrefix(spec, "bytes=") || err1 != nil || err2 != nil || start < 0 || end < start {
			writeError(w, newError(http.StatusBadRequest, "InvalidArgument", "x-amz-copy-source-range is malformed"))
			return
		}
		rng = &gofakes3.ObjectRangeRequest{Start: start, End: end}
	}
	obj, err := c.backend.GetObject(bucket, key, rng)
	if err != nil {
		var e gofakes3.Error
		if errors.As(err, &e) {
			writeError(w, newError(e.ErrorCode().Status(), string(e.ErrorCode()), "%s", err.Error()))
		} else {
			writeError(w, err)
		}
		return
	}
	body, err := io.ReadAll(obj.Contents)
	_ = obj.Contents.Close()
	if err != nil {
		writeError(w, err)
		return
	}
	if rng != nil && int64(len(body)) != rng.End-rng.Start+1 {
		writeError(w, newError(http.StatusBadRequest, "InvalidRange", "the range is outside the source object"))
		return
	}
	part := r.Clone(r.Context())
	part.Body, part.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	part.Header.Del("X-Amz-Copy-Source")
	part.Header.Del("X-Amz-Copy-Source-Range")
	part.Header.Del("Content-Md5")
	part.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	c.inner.ServeHTTP(rec, part)
	if rec.Code != http.StatusOK {
		for name, values := range rec.Header() {
			w.Header()[name] = values
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	out, _ := xml.Marshal(copyPartResult{
		LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		ETag:         rec.Header().Get("ETag"),
	})
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(append([]byte(xml.Header), out...))
}
