// Package deploy holds the Kubernetes manifests (deploy/k8s) and, in this test,
// their schema check: every manifest is decoded strictly into the official
// k8s.io/api types, and docker/compose.yaml and the Dockerfiles are linted.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// docSep splits multi-document YAML.
var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// strictDecode decodes JSON into v, refusing unknown fields and trailing data.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func loadManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under deploy/k8s: %v", err)
	}
	var out []object
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Errorf("%s doc %d: YAML: %v", f, i, err)
				continue
			}
			var tm struct{ APIVersion, Kind string }
			if err := json.Unmarshal(js, &tm); err != nil {
				t.Errorf("%s doc %d: %v", f, i, err)
				continue
			}
			var obj any
			var meta func() (string, map[string]string)
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/Deployment":
				o := &appsv1.Deployment{}
				obj, meta = o, func() (string, map[string]string) { return o.Name, o.Labels }
			case "batch/v1/Job":
				o := &batchv1.Job{}
				obj, meta = o, func() (string, map[string]string) { return o.Name, o.Labels }
			case "v1/Service":
				o := &corev1.Service{}
				obj, meta = o, func() (string, map[string]string) { return o.Name, o.Labels }
			case "v1/PersistentVolumeClaim":
				o := &corev1.PersistentVolumeClaim{}
				obj, meta = o, func() (string, map[string]string) { return o.Name, o.Labels }
			case "autoscaling/v2/HorizontalPodAutoscaler":
				o := &autoscalingv2.HorizontalPodAutoscaler{}
				obj, meta = o, func() (string, map[string]string) { return o.Name, o.Labels }
			default:
				t.Errorf("%s doc %d: unexpected apiVersion/kind %s/%s", f, i, tm.APIVersion, tm.Kind)
				continue
			}
			if err := strictDecode(js, obj); err != nil {
				t.Errorf("%s doc %d (%s): strict decode: %v", f, i, tm.Kind, err)
				continue
			}
			name, labels := meta()
			if name == "" || labels["app.kubernetes.io/name"] != "shopagent" {
				t.Errorf("%s doc %d (%s): name %q, labels %v: want a name and app.kubernetes.io/name=shopagent", f, i, tm.Kind, name, labels)
			}
			out = append(out, object{file: f, kind: tm.Kind, name: name, obj: obj})
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func find[T any](objs []object, name string) *T {
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok && o.name == name {
			return v
		}
	}
	return nil
}

// checkPod checks what every pod template must have: non-root user, no
// privilege escalation, read-only root, pinned images, resources.
func checkPod(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", what)
	}
	if len(spec.Containers) == 0 {
		t.Fatalf("%s: no containers", what)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: container securityContext must forbid escalation, make the root read-only and drop ALL", what, c.Name)
		}
		if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.HasSuffix(c.Image, ":latest") || strings.Contains(c.Image[i:], "/") {
			t.Errorf("%s/%s: image %q must carry a pinned tag", what, c.Name, c.Image)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: needs cpu and memory requests and a memory limit", what, c.Name)
		}
	}
	claims := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.PersistentVolumeClaim.ClaimName] = true
		}
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			found := false
			for _, v := range spec.Volumes {
				found = found || v.Name == m.Name
			}
			if !found {
				t.Errorf("%s/%s: mount %q has no volume", what, c.Name, m.Name)
			}
		}
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestManifests(t *testing.T) {
	objs := loadManifests(t)
	pvcs := map[string]bool{}
	for _, o := range objs {
		if p, ok := o.obj.(*corev1.PersistentVolumeClaim); ok {
			pvcs[p.Name] = true
		}
	}
	claimsExist := func(what string, spec corev1.PodSpec) {
		for _, v := range spec.Volumes {
			if v.PersistentVolumeClaim != nil && !pvcs[v.PersistentVolumeClaim.ClaimName] {
				t.Errorf("%s: claim %q is not defined in deploy/k8s", what, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}

	// The server: probes, selector, Service and HPA pointing at it.
	srv := find[appsv1.Deployment](objs, "shopagent-server")
	if srv == nil {
		t.Fatal("no Deployment shopagent-server")
	}
	if !matches(srv.Spec.Selector.MatchLabels, srv.Spec.Template.Labels) {
		t.Errorf("server selector %v does not match its pod labels %v", srv.Spec.Selector.MatchLabels, srv.Spec.Template.Labels)
	}
	checkPod(t, "server", srv.Spec.Template.Spec)
	claimsExist("server", srv.Spec.Template.Spec)
	c := srv.Spec.Template.Spec.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("server readiness probe must GET /readyz: %+v", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("server liveness probe must GET /healthz: %+v", p)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p != nil && p.HTTPGet != nil && ports[p.HTTPGet.Port.String()] == 0 && p.HTTPGet.Port.IntValue() == 0 {
			t.Errorf("probe port %q is not a container port", p.HTTPGet.Port.String())
		}
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--addr=:"+fmt.Sprint(ports["http"])) {
		t.Errorf("server args %v do not listen on the http port %d", c.Args, ports["http"])
	}
	svc := find[corev1.Service](objs, "shopagent-server")
	if svc == nil || !matches(svc.Spec.Selector, srv.Spec.Template.Labels) {
		t.Fatalf("Service shopagent-server missing or not selecting the server pods")
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.String() != "http" && p.TargetPort.IntValue() != int(ports["http"]) {
			t.Errorf("service port %d targets %q, not the server's http port", p.Port, p.TargetPort.String())
		}
	}
	hpa := find[autoscalingv2.HorizontalPodAutoscaler](objs, "shopagent-server")
	if hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler shopagent-server")
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != srv.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %+v, want the server Deployment", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas || len(hpa.Spec.Metrics) == 0 {
		t.Errorf("HPA bounds/metrics: min %v max %d metrics %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, len(hpa.Spec.Metrics))
	}
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource.Name == corev1.ResourceCPU && c.Resources.Requests.Cpu().IsZero() {
			t.Error("a CPU-utilisation HPA needs CPU requests on the server")
		}
	}

	// Redis: Deployment and a Service the server's REDIS_URL names.
	rd := find[appsv1.Deployment](objs, "shopagent-redis")
	rsvc := find[corev1.Service](objs, "shopagent-redis")
	if rd == nil || rsvc == nil {
		t.Fatal("Redis Deployment or Service missing")
	}
	if !matches(rd.Spec.Selector.MatchLabels, rd.Spec.Template.Labels) || !matches(rsvc.Spec.Selector, rd.Spec.Template.Labels) {
		t.Error("Redis selectors do not match its pod labels")
	}
	if matches(svc.Spec.Selector, rd.Spec.Template.Labels) || matches(rsvc.Spec.Selector, srv.Spec.Template.Labels) {
		t.Error("server and Redis services select each other's pods")
	}
	checkPod(t, "redis", rd.Spec.Template.Spec)
	redisURL := ""
	for _, e := range c.Env {
		if e.Name == "REDIS_URL" {
			redisURL = e.Value
		}
	}
	if want := fmt.Sprintf("redis://%s:%d/", rsvc.Name, rsvc.Spec.Ports[0].Port); !strings.HasPrefix(redisURL, want) {
		t.Errorf("server REDIS_URL %q, want %s...", redisURL, want)
	}

	// The sharded evaluation Job.
	job := find[batchv1.Job](objs, "shopagent-eval")
	if job == nil {
		t.Fatal("no Job shopagent-eval")
	}
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Error("eval Job must use completionMode Indexed")
	}
	if job.Spec.Completions == nil || *job.Spec.Completions < 2 || job.Spec.Parallelism == nil || *job.Spec.Parallelism < 1 {
		t.Error("eval Job needs completions >= 2 and a parallelism")
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever && job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("eval Job restartPolicy %q", job.Spec.Template.Spec.RestartPolicy)
	}
	checkPod(t, "eval", job.Spec.Template.Spec)
	claimsExist("eval", job.Spec.Template.Spec)
	jc := job.Spec.Template.Spec.Containers[0]
	args := strings.Join(jc.Args, " ")
	if want := fmt.Sprintf("--shard=$(JOB_COMPLETION_INDEX)/%d", *job.Spec.Completions); !strings.Contains(args, want) {
		t.Errorf("eval args %q lack %s (the shard count must equal completions)", args, want)
	}
	if !regexp.MustCompile(`--out=\S*\$\(JOB_COMPLETION_INDEX\)\S*\.parquet`).MatchString(args) {
		t.Errorf("eval args %q do not write one Parquet file per shard", args)
	}
	hasIndex := false
	for _, e := range jc.Env {
		if e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			hasIndex = true
		}
	}
	if !hasIndex {
		t.Error("eval container must declare JOB_COMPLETION_INDEX from the completion-index annotation ($(VAR) expansion needs it)")
	}
}

// TestStrictDecodeRejects shows the checker catches a misspelt field.
func TestStrictDecodeRejects(t *testing.T) {
	js, err := yaml.YAMLToJSON([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := strictDecode(js, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("misspelt field accepted: %v", err)
	}
}

func TestCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name     string
		Services map[string]struct {
			Image     string
			Build     *struct{ Context, Dockerfile string }
			Command   []string
			Ports     []string
			DependsOn map[string]struct{ Condition string } `json:"depends_on"`
			User      string
			Volumes   []string
		}
		Volumes map[string]any
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"server", "redis", "loadgen"} {
		if _, ok := doc.Services[s]; !ok {
			t.Fatalf("compose.yaml has no service %q", s)
		}
	}
	server, lg, redis := doc.Services["server"], doc.Services["loadgen"], doc.Services["redis"]
	if server.Build == nil || server.Build.Dockerfile != "docker/Dockerfile.serve" {
		t.Error("server must build docker/Dockerfile.serve")
	} else if _, err := os.Stat(filepath.Join("..", "docker", server.Build.Context, server.Build.Dockerfile)); err != nil {
		t.Errorf("server build: %v", err)
	}
	if !strings.Contains(strings.Join(server.Command, " "), "redis://redis:6379") {
		t.Errorf("server command %v does not use the redis service", server.Command)
	}
	if server.DependsOn["redis"].Condition != "service_healthy" {
		t.Error("server must wait for a healthy redis")
	}
	cmd := strings.Join(lg.Command, " ")
	if !strings.HasPrefix(cmd, "abtest ") || !strings.Contains(cmd, "--server=http://server:8080") {
		t.Errorf("loadgen command %q must be abtest --server=http://server:8080", cmd)
	}
	if _, ok := lg.DependsOn["server"]; !ok {
		t.Error("loadgen must depend on server")
	}
	for name, s := range doc.Services {
		if s.Image == "" || !strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("service %s image %q must carry a pinned tag", name, s.Image)
		}
		for _, v := range s.Volumes {
			if src, _, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := doc.Volumes[src]; !ok {
					t.Errorf("service %s mounts undeclared volume %q", name, src)
				}
			}
		}
	}
	if redis.User == "" || strings.HasPrefix(redis.User, "0") {
		t.Errorf("redis runs as %q, want a non-root user", redis.User)
	}
}

func TestDockerfiles(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^onnxruntime:`).Match(mk) {
		t.Error("the Makefile has no onnxruntime target, which the Dockerfiles run")
	}
	files, _ := filepath.Glob(filepath.Join("..", "docker", "Dockerfile.*"))
	if len(files) != 2 {
		t.Fatalf("want Dockerfile.serve and Dockerfile.train, found %v", files)
	}
	fromRE := regexp.MustCompile(`^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	argRE := regexp.MustCompile(`^ARG\s+(\w+)=(\S+)$`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		args := map[string]string{}
		var froms []string
		user, lastUser := "", ""
		ortLib, entry := false, false
		for _, line := range joinContinuations(string(raw)) {
			switch {
			case argRE.MatchString(line):
				m := argRE.FindStringSubmatch(line)
				args[m[1]] = m[2]
			case strings.HasPrefix(line, "FROM "):
				m := fromRE.FindStringSubmatch(line)
				if m == nil {
					t.Errorf("%s: cannot parse %q", f, line)
					continue
				}
				img := m[1]
				if strings.HasPrefix(img, "${") {
					img = args[strings.Trim(img, "${}")]
				}
				if tag := img[strings.LastIndex(img, "/")+1:]; !strings.Contains(tag, ":") || strings.HasSuffix(tag, ":latest") {
					t.Errorf("%s: base image %q must carry a pinned tag, not latest", f, img)
				}
				froms = append(froms, img)
				lastUser = ""
			case strings.HasPrefix(line, "USER "):
				lastUser = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
			case strings.HasPrefix(line, "ADD ") && strings.Contains(line, "://"):
				t.Errorf("%s: ADD of a URL (%q); fetch through a package client", f, line)
			case strings.HasPrefix(line, "COPY --from=") && strings.Contains(line, "libonnxruntime.so.1"):
				ortLib = true
			case strings.HasPrefix(line, "ENTRYPOINT "):
				entry = true
			}
			if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "curl ") {
				t.Errorf("%s: downloads with curl: %q", f, line)
			}
			user = lastUser
		}
		if len(froms) < 3 {
			t.Errorf("%s: want a multi-stage build (ort, build, runtime), got %d stages", f, len(froms))
		}
		if user == "" || user == "root" || strings.HasPrefix(user, "0") {
			t.Errorf("%s: the final stage must set a non-root USER, got %q", f, user)
		}
		if !ortLib || !entry {
			t.Errorf("%s: must copy libonnxruntime.so.1 into the runtime and set an ENTRYPOINT", f)
		}
		if !strings.Contains(string(raw), "make onnxruntime") {
			t.Errorf("%s: must fetch ONNX Runtime with `make onnxruntime`", f)
		}
	}
}

// joinContinuations returns the Dockerfile's instructions, one per line,
// with comments dropped and backslash continuations joined.
func joinContinuations(s string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`) + " ")
			continue
		}
		cur.WriteString(t)
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	return out
}
