/**
 * The deployment artifacts are never run on this machine (no Docker engine, no
 * cluster), so these tests hold them to their contract by reading them:
 * docker-compose.yml, deploy/Dockerfile (+ its .dockerignore), the Kubernetes
 * manifests under deploy/k8s/, and .ci/run. Every role must be able to run as
 * several replicas (DESIGN.md, invariant 5), which several checks below encode.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function obj(value: unknown, what: string): Obj {
  if (!isObj(value)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}
function arr(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what}: expected a list, got ${JSON.stringify(value)}`);
  return value;
}
function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

const pkg = obj(JSON.parse(read('package.json')), 'package.json');
const scripts = obj(pkg.scripts, 'package.json scripts');

/** Compose services and Kubernetes workloads share these names with the npm scripts. */
const ROLES = ['api', 'step-worker', 'service-worker', 'scheduler'] as const;
type Role = (typeof ROLES)[number];

// ---------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  // merge: resolve `<<: *anchor` the way Compose does.
  const compose = obj(parse(read('docker-compose.yml'), { merge: true }), 'compose file');
  const services = obj(compose.services, 'services');
  const service = (name: string): Obj => obj(services[name], `service ${name}`);
  const batonServices = ['migrate', ...ROLES];

  /** Compose accepts environment as a mapping or as a list of KEY=VALUE. */
  function envOf(name: string): Record<string, string> {
    const env = service(name).environment;
    const out: Record<string, string> = {};
    if (Array.isArray(env)) {
      for (const entry of env) {
        const [key, ...rest] = str(entry, `${name} environment entry`).split('=');
        out[key ?? ''] = rest.join('=');
      }
    } else {
      for (const [key, value] of Object.entries(obj(env, `${name} environment`))) out[key] = String(value);
    }
    return out;
  }

  /** depends_on as { service: condition }; the list form means service_started. */
  function dependsOn(name: string): Record<string, string> {
    const deps = service(name).depends_on;
    if (deps === undefined) return {};
    if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [str(d, 'depends_on'), 'service_started']));
    return Object.fromEntries(
      Object.entries(obj(deps, `${name} depends_on`)).map(([dep, spec]) => [
        dep,
        str(obj(spec, `${name} depends_on ${dep}`).condition ?? 'service_started', 'condition'),
      ]),
    );
  }

  function commandWords(name: string): string[] {
    const command = service(name).command;
    if (typeof command === 'string') return command.trim().split(/\s+/);
    return arr(command, `${name} command`).map((w) => str(w, `${name} command word`));
  }

  function healthcheckText(name: string): string {
    const test = obj(service(name).healthcheck, `${name} healthcheck`).test;
    return Array.isArray(test) ? test.map(String).join(' ') : str(test, `${name} healthcheck test`);
  }

  /** Ports as { host, container }; host is undefined when Docker picks one. */
  function portsOf(name: string): { host: string | undefined; container: number }[] {
    const ports = service(name).ports;
    if (ports === undefined) return [];
    return arr(ports, `${name} ports`).map((p) => {
      if (isObj(p)) return { host: p.published === undefined ? undefined : String(p.published), container: Number(p.target) };
      // "[ip:]host:container[/proto]" or "container"
      const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
      const container = Number(parts.pop());
      const host = parts.pop();
      return { host: host === '' ? undefined : host, container };
    });
  }

  it('defines postgres, redis, migrate and every Baton role', () => {
    for (const name of ['postgres', 'redis', ...batonServices]) expect(services, name).toHaveProperty(name);
  });

  it('checks postgres with pg_isready and keeps its data in a named volume', () => {
    const postgres = service('postgres');
    expect(String(postgres.image)).toMatch(/^postgres:16\b/);
    expect(healthcheckText('postgres')).toContain('pg_isready');
    const volumes = arr(postgres.volumes, 'postgres volumes').map(String);
    const dataVolume = volumes.find((v) => v.endsWith(':/var/lib/postgresql/data'));
    expect(dataVolume, 'postgres data volume').toBeDefined();
    const volumeName = dataVolume?.split(':')[0] ?? '';
    expect(obj(compose.volumes, 'volumes')).toHaveProperty(volumeName);
  });

  it('checks redis with redis-cli ping and keeps BullMQ keys from eviction', () => {
    expect(String(service('redis').image)).toMatch(/^redis:7\b/);
    expect(healthcheckText('redis')).toMatch(/redis-cli.*ping/);
    expect(commandWords('redis').join(' ')).toContain('--maxmemory-policy noeviction');
  });

  it('gives every long-running service a healthcheck; Baton roles probe /ready with node fetch', () => {
    for (const name of ['postgres', 'redis', ...ROLES]) {
      expect(service(name).healthcheck, `${name} healthcheck`).toBeDefined();
    }
    for (const name of ROLES) {
      const text = healthcheckText(name);
      // The slim runtime image has neither curl nor wget.
      expect(text, name).not.toMatch(/\b(curl|wget)\b/);
      expect(text, name).toMatch(/\bnode -e\b/);
      expect(text, name).toContain('fetch(');
      expect(text, name).toContain('/ready');
      // The api answers on PORT, the other roles on HEALTH_PORT.
      if (name === 'api') expect(text, name).toMatch(/PORT \|\| 3000|:3000\//);
      else expect(text, name).toMatch(/HEALTH_PORT \|\| 8081|:8081\//);
    }
  });

  it('publishes the api on host port 3000', () => {
    expect(portsOf('api')).toContainEqual({ host: '3000', container: 3000 });
    expect(envOf('api').PORT).toBe('3000');
  });

  it('lets every role scale: no container_name, no fixed host port except the api', () => {
    for (const name of batonServices) {
      expect(service(name), name).not.toHaveProperty('container_name');
    }
    for (const name of ['step-worker', 'service-worker', 'scheduler']) {
      for (const port of portsOf(name)) expect(port.host, `${name} host port`).toBeUndefined();
    }
    const stepReplicas = obj(service('step-worker').deploy, 'step-worker deploy').replicas;
    expect(stepReplicas).toBeGreaterThanOrEqual(2);
  });

  it('shares one x-baton-env block, with DATABASE_URL and REDIS_URL pointing at the compose services', () => {
    const shared = obj(compose['x-baton-env'], 'x-baton-env');
    for (const name of batonServices) {
      const env = envOf(name);
      for (const [key, value] of Object.entries(shared)) expect(env[key], `${name} ${key}`).toBe(String(value));
      expect(env.DATABASE_URL, name).toBeDefined();
      expect(env.REDIS_URL, name).toBeDefined();
      const db = new URL(env.DATABASE_URL ?? '');
      const redis = new URL(env.REDIS_URL ?? '');
      expect(db.protocol).toBe('postgres:');
      expect(redis.protocol).toBe('redis:');
      expect(services, `${name} DATABASE_URL host`).toHaveProperty(db.hostname);
      expect(services, `${name} REDIS_URL host`).toHaveProperty(redis.hostname);
      // Bound to loopback, the healthcheck would pass while nothing else could connect.
      expect(env.HOST, `${name} HOST`).toBe('0.0.0.0');
    }
    // The database URL must carry the credentials the postgres service is created with.
    const pgEnv = envOf('postgres');
    const db = new URL(envOf('api').DATABASE_URL ?? '');
    expect(db.username).toBe(pgEnv.POSTGRES_USER);
    expect(decodeURIComponent(db.password)).toBe(pgEnv.POSTGRES_PASSWORD);
    expect(db.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
  });

  it('orders start-up: migrate after a healthy postgres, the roles after a successful migrate', () => {
    expect(dependsOn('migrate')).toEqual({ postgres: 'service_healthy' });
    for (const name of ROLES) {
      expect(dependsOn(name), name).toEqual({
        postgres: 'service_healthy',
        redis: 'service_healthy',
        migrate: 'service_completed_successfully',
      });
    }
  });

  it('runs each Baton service as `npm run <its own script>`, and the script exists', () => {
    const expected: Record<string, string> = { migrate: 'migrate' };
    for (const role of ROLES) expected[role] = role;
    for (const name of batonServices) {
      const words = commandWords(name);
      expect(words.slice(0, 2), name).toEqual(['npm', 'run']);
      expect(words[2], name).toBe(expected[name]);
      expect(scripts, `npm script for ${name}`).toHaveProperty(words[2] ?? '');
    }
  });

  it('builds every Baton service from the same image and deploy/Dockerfile', () => {
    const images = new Set(batonServices.map((name) => service(name).image));
    expect(images.size).toBe(1);
    for (const name of batonServices) {
      const build = obj(service(name).build, `${name} build`);
      expect(build.dockerfile).toBe('deploy/Dockerfile');
      expect(existsSync(join(root, String(build.context ?? '.'), String(build.dockerfile)))).toBe(true);
    }
  });

  it('restarts the long-running services, not the one-shot migrate', () => {
    for (const name of ['postgres', 'redis', ...ROLES]) {
      expect(['always', 'unless-stopped', 'on-failure'], name).toContain(service(name).restart);
    }
    expect(['no', 'on-failure']).toContain(service('migrate').restart);
  });

  it('allows at least 30 s for a graceful close', () => {
    for (const name of ROLES) {
      const grace = String(service(name).stop_grace_period ?? '10s');
      const match = /^(\d+)s$/.exec(grace) ?? /^(\d+)m$/.exec(grace);
      const seconds = match ? Number(match[1]) * (grace.endsWith('m') ? 60 : 1) : 0;
      expect(seconds, `${name} stop_grace_period ${grace}`).toBeGreaterThanOrEqual(30);
    }
  });
});

// ---------------------------------------------------------------------------
// deploy/k8s/**
// ---------------------------------------------------------------------------

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

interface Manifest {
  file: string;
  kind: string;
  name: string;
  doc: Obj;
}

function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const path of yamlFilesUnder(join(root, 'deploy/k8s'))) {
    const file = relative(root, path);
    for (const document of parseAllDocuments(readFileSync(path, 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc: unknown = document.toJS();
      if (doc === null || doc === undefined) continue; // empty document after a trailing ---
      const o = obj(doc, file);
      const metadata = obj(o.metadata, `${file} metadata`);
      manifests.push({ file, kind: str(o.kind, `${file} kind`), name: str(metadata.name, `${file} name`), doc: o });
    }
  }
  return manifests;
}

describe('deploy/k8s manifests', () => {
  const manifests = loadManifests();
  const ofKind = (kind: string): Manifest[] => manifests.filter((m) => m.kind === kind);
  const deployments = ofKind('Deployment');
  const jobs = ofKind('Job');

  const podSpec = (m: Manifest): Obj =>
    obj(obj(obj(m.doc.spec, `${m.name} spec`).template, `${m.name} template`).spec, `${m.name} pod spec`);
  const podLabels = (m: Manifest): Obj =>
    obj(obj(obj(obj(m.doc.spec, `${m.name} spec`).template, `${m.name} template`).metadata, 'metadata').labels, 'labels');
  const containers = (m: Manifest): Obj[] =>
    arr(podSpec(m).containers, `${m.name} containers`).map((c) => obj(c, `${m.name} container`));

  /** The Deployment whose pods carry app.kubernetes.io/component=<role>. */
  function deploymentFor(role: Role): Manifest {
    const found = deployments.filter((d) => podLabels(d)['app.kubernetes.io/component'] === role);
    expect(found.map((d) => d.name), `Deployment for ${role}`).toHaveLength(1);
    return found[0] as Manifest;
  }

  function configMapKeys(name: string): Set<string> {
    const cm = ofKind('ConfigMap').find((m) => m.name === name);
    if (!cm) throw new Error(`no ConfigMap ${name}`);
    return new Set(Object.keys(obj(cm.doc.data ?? {}, `${name} data`)));
  }
  function secretKeys(name: string): Set<string> {
    const secret = ofKind('Secret').find((m) => m.name === name);
    if (!secret) throw new Error(`no Secret ${name}`);
    return new Set([
      ...Object.keys(obj(secret.doc.data ?? {}, `${name} data`)),
      ...Object.keys(obj(secret.doc.stringData ?? {}, `${name} stringData`)),
    ]);
  }

  /**
   * Every env name a container receives, after checking that each reference
   * resolves: envFrom sources exist, every secretKeyRef/configMapKeyRef key exists.
   */
  function resolvedEnv(owner: string, container: Obj): Map<string, 'literal' | 'configmap' | 'secret'> {
    const names = new Map<string, 'literal' | 'configmap' | 'secret'>();
    for (const source of arr(container.envFrom ?? [], `${owner} envFrom`).map((s) => obj(s, 'envFrom'))) {
      if (source.configMapRef) {
        for (const key of configMapKeys(str(obj(source.configMapRef, 'ref').name, 'name'))) names.set(key, 'configmap');
      }
      if (source.secretRef) {
        for (const key of secretKeys(str(obj(source.secretRef, 'ref').name, 'name'))) names.set(key, 'secret');
      }
    }
    for (const entry of arr(container.env ?? [], `${owner} env`).map((e) => obj(e, 'env'))) {
      const name = str(entry.name, `${owner} env name`);
      if (entry.valueFrom === undefined) {
        names.set(name, 'literal');
        continue;
      }
      const from = obj(entry.valueFrom, `${owner} ${name} valueFrom`);
      if (from.secretKeyRef) {
        const ref = obj(from.secretKeyRef, 'secretKeyRef');
        expect(secretKeys(str(ref.name, 'name')), `${owner}: secret key for ${name}`).toContain(ref.key);
        names.set(name, 'secret');
      } else if (from.configMapKeyRef) {
        const ref = obj(from.configMapKeyRef, 'configMapKeyRef');
        expect(configMapKeys(str(ref.name, 'name')), `${owner}: configmap key for ${name}`).toContain(ref.key);
        names.set(name, 'configmap');
      } else {
        names.set(name, 'literal');
      }
    }
    return names;
  }

  /** Resolve a probe/Service port (number or name) to a containerPort. */
  function containerPort(container: Obj, port: unknown): number | undefined {
    const ports = arr(container.ports ?? [], 'ports').map((p) => obj(p, 'port'));
    if (typeof port === 'number') return ports.some((p) => p.containerPort === port) ? port : undefined;
    const named = ports.find((p) => p.name === port);
    return named === undefined ? undefined : Number(named.containerPort);
  }

  it('parses, and every document is namespace-agnostic and named', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) {
      expect(typeof m.doc.apiVersion, m.file).toBe('string');
      expect(obj(m.doc.metadata, m.file), `${m.file} ${m.kind}/${m.name}`).not.toHaveProperty('namespace');
    }
  });

  it('contains the ConfigMap, Secret, migrate Job, four Deployments, the api Service and an HPA', () => {
    const kinds = manifests.map((m) => m.kind);
    for (const kind of ['ConfigMap', 'Secret', 'Job', 'Service', 'HorizontalPodAutoscaler']) expect(kinds).toContain(kind);
    expect(deployments).toHaveLength(ROLES.length);
    for (const role of ROLES) deploymentFor(role);
  });

  it('runs each workload with exactly the command of its npm script', () => {
    const expectCommand = (m: Manifest, script: string): void => {
      for (const c of containers(m)) {
        const words = [...arr(c.command ?? [], 'command'), ...arr(c.args ?? [], 'args')].map(String);
        expect(words.join(' '), `${m.name} command`).toBe(str(scripts[script], `npm script ${script}`));
      }
    };
    for (const role of ROLES) expectCommand(deploymentFor(role), role);
    expect(jobs).toHaveLength(1);
    expectCommand(jobs[0] as Manifest, 'migrate');
  });

  it('probes every Deployment container: liveness on /health, readiness on /ready, on its serving port', () => {
    const config = configMapKeys('baton-config');
    expect(config).toContain('PORT');
    expect(config).toContain('HEALTH_PORT');
    const cm = obj(ofKind('ConfigMap').find((m) => m.name === 'baton-config')?.doc.data, 'baton-config data');
    for (const role of ROLES) {
      const d = deploymentFor(role);
      const servingPort = Number(role === 'api' ? cm.PORT : cm.HEALTH_PORT);
      for (const c of containers(d)) {
        const liveness = obj(obj(c.livenessProbe, `${d.name} livenessProbe`).httpGet, 'liveness httpGet');
        const readiness = obj(obj(c.readinessProbe, `${d.name} readinessProbe`).httpGet, 'readiness httpGet');
        expect(liveness.path, d.name).toBe('/health');
        expect(readiness.path, d.name).toBe('/ready');
        expect(containerPort(c, liveness.port), `${d.name} liveness port`).toBe(servingPort);
        expect(containerPort(c, readiness.port), `${d.name} readiness port`).toBe(servingPort);
        if (c.startupProbe !== undefined) {
          const startup = obj(obj(c.startupProbe, `${d.name} startupProbe`).httpGet, 'startup httpGet');
          expect(startup.path, d.name).toBe('/health');
          expect(containerPort(c, startup.port), `${d.name} startup port`).toBe(servingPort);
        }
      }
    }
  });

  it('sets resource requests and limits, a 30 s grace period and a non-root security context', () => {
    for (const m of [...deployments, ...jobs]) {
      const spec = podSpec(m);
      if (m.kind === 'Deployment') expect(spec.terminationGracePeriodSeconds, m.name).toBeGreaterThanOrEqual(30);
      const podSecurity = obj(spec.securityContext ?? {}, `${m.name} pod securityContext`);
      for (const c of containers(m)) {
        const resources = obj(c.resources, `${m.name} resources`);
        for (const bound of ['requests', 'limits']) {
          const b = obj(resources[bound], `${m.name} ${bound}`);
          expect(b, `${m.name} ${bound}`).toHaveProperty('cpu');
          expect(b, `${m.name} ${bound}`).toHaveProperty('memory');
        }
        const security = { ...podSecurity, ...obj(c.securityContext ?? {}, `${m.name} securityContext`) };
        expect(security.runAsNonRoot, m.name).toBe(true);
        // The image's USER is numeric too, but an explicit non-zero uid keeps
        // runAsNonRoot verifiable whatever image is substituted.
        expect(security.runAsUser, m.name).toBeGreaterThan(0);
        expect(security.allowPrivilegeEscalation, m.name).toBe(false);
      }
    }
  });

  it('uses one image for every workload, pinned to a tag', () => {
    const images = new Set([...deployments, ...jobs].flatMap((m) => containers(m).map((c) => str(c.image, `${m.name} image`))));
    expect(images.size).toBe(1);
    const [image] = [...images];
    expect(image).toMatch(/:[\w.-]+$/);
    expect(image).not.toMatch(/:latest$/);
  });

  it('provides every referenced env key, with DATABASE_URL and REDIS_URL from the Secret', () => {
    for (const m of [...deployments, ...jobs]) {
      for (const c of containers(m)) {
        const env = resolvedEnv(m.name, c);
        expect(env.get('DATABASE_URL'), `${m.name} DATABASE_URL`).toBe('secret');
        expect(env.get('REDIS_URL'), `${m.name} REDIS_URL`).toBe('secret');
        expect(env.has('HOST'), `${m.name} HOST`).toBe(true);
      }
    }
    for (const role of ROLES) {
      const env = resolvedEnv(role, containers(deploymentFor(role))[0] ?? {});
      expect(env.has(role === 'api' ? 'PORT' : 'HEALTH_PORT'), role).toBe(true);
    }
    const config = obj(ofKind('ConfigMap').find((m) => m.name === 'baton-config')?.doc.data, 'baton-config data');
    expect(config.HOST).toBe('0.0.0.0');
    expect(config, 'credentials belong in the Secret').not.toHaveProperty('DATABASE_URL');
    expect(config, 'credentials belong in the Secret').not.toHaveProperty('REDIS_URL');
  });

  it('ships the Secret only as an obvious placeholder, outside the non-recursive apply path', () => {
    for (const secret of ofKind('Secret')) {
      expect(secret.file, 'kubectl apply -f deploy/k8s/ must not overwrite a real Secret').toMatch(
        /^deploy\/k8s\/[^/]+\/.+/,
      );
      const values = Object.values(obj(secret.doc.stringData ?? {}, 'stringData')).map(String);
      expect(values.length).toBeGreaterThan(0);
      for (const value of values) expect(value).toMatch(/CHANGE-ME/);
    }
  });

  it('autoscales the step-worker Deployment on CPU, and leaves its replica count to the HPA', () => {
    const step = deploymentFor('step-worker');
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas).toHaveLength(1);
    const spec = obj(hpas[0]?.doc.spec, 'hpa spec');
    expect(hpas[0]?.doc.apiVersion).toBe('autoscaling/v2');
    expect(spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: step.name });
    const metrics = arr(spec.metrics, 'metrics').map((m) => obj(m, 'metric'));
    expect(metrics.some((m) => m.type === 'Resource' && obj(m.resource, 'resource').name === 'cpu')).toBe(true);
    expect(Number(spec.minReplicas)).toBeGreaterThanOrEqual(2);
    expect(Number(spec.maxReplicas)).toBeGreaterThan(Number(spec.minReplicas));
    // A CPU utilisation target means nothing without a CPU request.
    for (const c of containers(step)) expect(obj(obj(c.resources, 'resources').requests, 'requests')).toHaveProperty('cpu');
    expect(obj(step.doc.spec, 'spec')).not.toHaveProperty('replicas');
  });

  it('runs the scheduler as two replicas', () => {
    expect(obj(deploymentFor('scheduler').doc.spec, 'spec').replicas).toBe(2);
  });

  it('selects pods consistently, and the Service reaches only the api', () => {
    for (const d of deployments) {
      const matchLabels = obj(obj(obj(d.doc.spec, 'spec').selector, 'selector').matchLabels, 'matchLabels');
      expect(podLabels(d), d.name).toMatchObject(matchLabels);
    }
    const services = ofKind('Service');
    expect(services).toHaveLength(1);
    const spec = obj(services[0]?.doc.spec, 'service spec');
    const selector = obj(spec.selector, 'service selector');
    const selected = deployments.filter((d) =>
      Object.entries(selector).every(([key, value]) => podLabels(d)[key] === value),
    );
    expect(selected.map((d) => d.name)).toEqual([deploymentFor('api').name]);
    const api = containers(deploymentFor('api'))[0] ?? {};
    for (const port of arr(spec.ports, 'service ports').map((p) => obj(p, 'service port'))) {
      expect(containerPort(api, port.targetPort ?? port.port), 'Service targetPort').toBe(3000);
    }
  });

  it('runs the migrate Job to completion without restarting it forever', () => {
    const job = jobs[0] as Manifest;
    expect(['Never', 'OnFailure']).toContain(podSpec(job).restartPolicy);
    expect(Number(obj(job.doc.spec, 'job spec').backoffLimit)).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------
// deploy/Dockerfile
// ---------------------------------------------------------------------------

describe('deploy/Dockerfile', () => {
  const dockerfile = read('deploy/Dockerfile');
  // Join continuation lines and drop comments, so each entry is one instruction.
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: { from: string; name: string | undefined; body: string[] }[] = [];
  for (const line of instructions) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1] ?? '', name: from[2], body: [] });
    else stages.at(-1)?.body.push(line);
  }
  const args = Object.fromEntries(
    instructions.flatMap((line) => {
      const m = /^ARG\s+(\w+)=(\S+)/i.exec(line);
      return m ? [[m[1], m[2]]] : [];
    }),
  );
  const image = (from: string): string => from.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? from);
  const build = stages[0];
  const runtime = stages.at(-1);

  it('is multi-stage on node:20-bookworm-slim, the runtime copying from the build stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(image(stage.from)).toBe('node:20-bookworm-slim');
    expect(build?.name).toBeDefined();
    expect(runtime?.body.some((l) => new RegExp(`^COPY\\s+--from=${build?.name}\\s`, 'i').test(l))).toBe(true);
  });

  it('installs the native toolchain and runs npm install in the build stage only', () => {
    const buildBody = build?.body.join('\n') ?? '';
    for (const tool of ['python3', 'make', 'g++']) expect(buildBody).toMatch(new RegExp(`apt-get install[^\\n]*\\s${tool.replace('+', '\\+')}(\\s|$)`));
    expect(buildBody).toMatch(/^RUN\b.*\bnpm install\b/m);
    const runtimeBody = runtime?.body.join('\n') ?? '';
    expect(runtimeBody).not.toMatch(/\bg\+\+|\bnpm (ci|install)\b/);
  });

  it('runs as a non-root user', () => {
    const users = runtime?.body.filter((l) => /^USER\s/i.test(l)) ?? [];
    expect(users.length).toBeGreaterThan(0);
    const user = (users.at(-1) ?? '').replace(/^USER\s+/i, '').split(':')[0];
    expect(['root', '0', '']).not.toContain(user);
  });

  it('starts the api by default through node --no-node-snapshot', () => {
    const cmd = runtime?.body.filter((l) => /^CMD\s/i.test(l)).at(-1) ?? '';
    const words = JSON.parse(cmd.replace(/^CMD\s+/i, '')) as string[];
    expect(words).toContain('--no-node-snapshot');
    expect(words.join(' ')).toBe(str(scripts.api, 'npm script api'));
    const entrypoint = runtime?.body.filter((l) => /^ENTRYPOINT\s/i.test(l)).at(-1);
    if (entrypoint) expect(entrypoint).not.toMatch(/\bnode\b/);
  });

  it('copies what the npm scripts need, and the dockerignore lets exactly that in', () => {
    const copied = (runtime?.body ?? [])
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
      .flatMap((l) => l.replace(/^COPY\s+(--\S+\s+)*/i, '').split(/\s+/).slice(0, -1));
    // Every entry point the scripts run lives in workers/; the code they import in src/.
    for (const needed of ['package.json', 'tsconfig.json', 'workers', 'src', 'migrations']) expect(copied).toContain(needed);

    const ignore = read('deploy/Dockerfile.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    // Allow-list: exclude everything, re-include each copied path.
    expect(ignore[0]).toBe('*');
    for (const path of copied) expect(ignore, `dockerignore re-includes ${path}`).toContain(path.includes('.') ? `!${path}` : `!${path}/`);
    // A host node_modules holds native addons built for another system.
    expect(ignore).toContain('**/node_modules');
  });
});

// ---------------------------------------------------------------------------
// .ci/run
// ---------------------------------------------------------------------------

describe('.ci/run', () => {
  const path = join(root, '.ci/run');
  const text = read('.ci/run');

  it('is an executable bash script with strict mode that parses', () => {
    expect(statSync(path).mode & 0o111).not.toBe(0);
    expect(text.split('\n')[0]).toMatch(/^#!.*\bbash\b/);
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(() => execFileSync('bash', ['-n', path])).not.toThrow();
  });

  it('brings up PostgreSQL and Redis before installing and testing', () => {
    expect(text).toContain('pg_isready -q -h 127.0.0.1 -p 5432');
    expect(text).toContain('pg_ctlcluster --skip-systemctl-redirect');
    expect(text).toContain('redis-cli -h 127.0.0.1 -p 6379 ping');
    expect(text).toMatch(/redis-server --daemonize yes --bind 127\.0\.0\.1 --port 6379/);
    expect(text).toMatch(/package-lock\.json -nt node_modules\/\.package-lock\.json/);
    const order = ['pg_ctlcluster', 'redis-server', 'npm install', 'exec npm test'].map((s) => text.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('ends by handing over to npm test', () => {
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.at(-1)).toBe('exec npm test');
    expect(scripts).toHaveProperty('test');
  });
});
