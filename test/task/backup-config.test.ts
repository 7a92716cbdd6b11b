import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { BackupConfig, Environment } from '../../task/config.ts';
import { BACKUP_SETTINGS, loadBackupConfig } from '../../task/config.ts';
import { BackupFailure, redactSecrets, registerSecret } from '../../task/errors.ts';

const MiB = 2 ** 20;

/** The least a backup needs when connecting with the PG* variables. */
function minimalEnvironment(overrides: Record<string, string | undefined> = {}): Environment {
  return {
    PGKEEP_BUCKET: 'acme-db-backups',
    PGKEEP_ENVIRONMENT: 'prod',
    PGHOST: 'db.internal',
    PGUSER: 'backup',
    PGDATABASE: 'shop',
    ...overrides,
  };
}

/** Loads a configuration that is expected to be rejected and returns the failure. */
function configurationFailure(env: Environment): BackupFailure {
  try {
    loadBackupConfig(env);
  } catch (error) {
    if (error instanceof BackupFailure) return error;
    throw new Error(`expected a BackupFailure, got ${inspect(error)}`);
  }
  throw new Error('expected the configuration to be rejected, but it loaded');
}

/** Where each numeric setting with a documented default ends up, in the unit its description uses. */
const NUMERIC_DEFAULTS: Record<string, (config: BackupConfig) => number> = {
  PGKEEP_COMPRESSION_LEVEL: (config) => config.compression.level,
  PGKEEP_COMPRESSION_THREADS: (config) => config.compression.threads,
  PGKEEP_PART_SIZE_MIB: (config) => config.upload.initialPartSizeBytes / MiB,
  PGKEEP_PARTS_IN_FLIGHT: (config) => config.upload.maxPartsInFlight,
  PGKEEP_EXACT_COUNT_MAX_MB: (config) => config.exactCountMaxBytes / MiB,
  PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS: (config) => config.lockWaitTimeoutSeconds,
  PGKEEP_PROGRESS_SECONDS: (config) => config.progressIntervalMs / 1000,
  PGKEEP_BACKUP_DEADLINE_SECONDS: (config) => config.deadlineMs / 1000,
  PGKEEP_S3_REQUEST_TIMEOUT_SECONDS: (config) => config.s3RequestTimeoutMs / 1000,
};

function documentedNumericDefault(description: string): number | undefined {
  const match = /default:? (\d+)/.exec(description);
  return match ? Number(match[1]) : undefined;
}

describe('loadBackupConfig with only the required PG* settings', () => {
  const config = loadBackupConfig(minimalEnvironment());

  it('connects as described by the PG* variables, on port 5432', () => {
    expect(config.connection).toEqual({
      host: 'db.internal',
      port: 5432,
      user: 'backup',
      password: undefined,
      database: 'shop',
      sslMode: undefined,
      sslRootCert: undefined,
    });
  });

  it.each(Object.entries(BACKUP_SETTINGS).filter(([, description]) => documentedNumericDefault(description) !== undefined))(
    'uses the default %s documents (%s)',
    (name, description) => {
      const actual = NUMERIC_DEFAULTS[name];

      expect(actual, `${name} has a documented default but no check in this test`).toBeDefined();
      expect(actual?.(config)).toBe(documentedNumericDefault(description));
    },
  );

  it('checks every numeric default it knows of against the documentation', () => {
    const documented = Object.entries(BACKUP_SETTINGS)
      .filter(([, description]) => documentedNumericDefault(description) !== undefined)
      .map(([name]) => name);

    expect(documented.sort()).toEqual(Object.keys(NUMERIC_DEFAULTS).sort());
  });

  it('catalogues backups under the database name', () => {
    expect(BACKUP_SETTINGS.PGKEEP_DATABASE_NAME).toMatch(/default: the database name/);
    expect(config.catalogDatabase).toBe('shop');
  });

  it('talks to AWS S3 with virtual-hosted addressing, CRC64NVME checksums and the bucket default encryption', () => {
    expect(BACKUP_SETTINGS.PGKEEP_S3_CHECKSUM).toMatch(/default: crc64nvme on AWS/);
    expect(config.s3).toEqual({
      bucket: 'acme-db-backups',
      endpoint: undefined,
      region: 'us-east-1',
      forcePathStyle: false,
      checksum: 'crc64nvme',
      kmsKeyId: undefined,
      objectLock: false,
    });
  });

  it('chooses pg_dump by server version, with no extra search directories', () => {
    expect(config.pgDumpPath).toBeUndefined();
    expect(config.pgBinDirs).toEqual([]);
  });

  it('records the environment name', () => {
    expect(config.environment).toBe('prod');
  });
});

describe('loadBackupConfig with settings given', () => {
  it('reads every optional setting', () => {
    const config = loadBackupConfig(
      minimalEnvironment({
        PGPORT: '6543',
        PGPASSWORD: 'pw-from-env',
        PGSSLMODE: 'verify-full',
        PGSSLROOTCERT: '/etc/ssl/rds.pem',
        PGKEEP_DATABASE_NAME: 'shop (eu)',
        PGKEEP_KMS_KEY_ID: 'alias/backups',
        AWS_REGION: 'eu-west-1',
        PGKEEP_COMPRESSION_LEVEL: '19',
        PGKEEP_COMPRESSION_THREADS: '4',
        PGKEEP_PART_SIZE_MIB: '6',
        PGKEEP_PARTS_IN_FLIGHT: '4',
        PGKEEP_EXACT_COUNT_MAX_MB: '0',
        PGKEEP_LOCK_WAIT_TIMEOUT_SECONDS: '30',
        PGKEEP_PG_DUMP_PATH: '/opt/pg/bin/pg_dump',
        PGKEEP_PG_BIN_DIRS: '/opt/pg17/bin::/opt/pg16/bin',
        PGKEEP_PROGRESS_SECONDS: '5',
      }),
    );

    expect(config).toMatchObject({
      connection: { port: 6543, password: 'pw-from-env', sslMode: 'verify-full', sslRootCert: '/etc/ssl/rds.pem' },
      catalogDatabase: 'shop (eu)',
      s3: { region: 'eu-west-1', kmsKeyId: 'alias/backups' },
      compression: { level: 19, threads: 4 },
      upload: { initialPartSizeBytes: 6 * MiB, maxPartsInFlight: 4 },
      exactCountMaxBytes: 0,
      lockWaitTimeoutSeconds: 30,
      pgDumpPath: '/opt/pg/bin/pg_dump',
      pgBinDirs: ['/opt/pg17/bin', '/opt/pg16/bin'],
      progressIntervalMs: 5_000,
    });
  });

  it('treats blank values as unset', () => {
    const config = loadBackupConfig(minimalEnvironment({ PGPORT: '  ', PGKEEP_COMPRESSION_LEVEL: '', PGKEEP_S3_ENDPOINT: ' ' }));

    expect(config.connection.port).toBe(5432);
    expect(config.compression.level).toBe(3);
    expect(config.s3.endpoint).toBeUndefined();
  });

  it('reads a PGKEEP_DATABASE_URL with a URL-encoded password containing @, : and /', () => {
    const url = `postgresql://alice:${encodeURIComponent('p@ss:w/rd')}@db.example.com:6543/orders?sslmode=verify-full`;

    const config = loadBackupConfig(minimalEnvironment({ PGHOST: undefined, PGUSER: undefined, PGDATABASE: undefined, PGKEEP_DATABASE_URL: url }));

    expect(config.connection).toEqual({
      host: 'db.example.com',
      port: 6543,
      user: 'alice',
      password: 'p@ss:w/rd',
      database: 'orders',
      sslMode: 'verify-full',
      sslRootCert: undefined,
    });
    expect(config.catalogDatabase).toBe('orders');
  });

  it('prefers PGKEEP_DATABASE_URL over the PG* variables', () => {
    const config = loadBackupConfig(minimalEnvironment({ PGKEEP_DATABASE_URL: 'postgres://carol:secret@url-host/url_db' }));

    expect(config.connection).toMatchObject({ host: 'url-host', user: 'carol', database: 'url_db' });
  });

  it('takes the password from PGPASSWORD when the URL has none', () => {
    const config = loadBackupConfig(minimalEnvironment({ PGKEEP_DATABASE_URL: 'postgresql://alice@db.example.com/orders', PGPASSWORD: 'from-pgpassword' }));

    expect(config.connection.password).toBe('from-pgpassword');
  });

  it("uses the URL's password over PGPASSWORD when both are given", () => {
    const config = loadBackupConfig(
      minimalEnvironment({ PGKEEP_DATABASE_URL: 'postgresql://alice:from-url@db.example.com/orders', PGPASSWORD: 'from-pgpassword' }),
    );

    expect(config.connection.password).toBe('from-url');
  });

  it("accepts libpq's Unix-socket URL with an empty host, taking the socket directory from ?host=", () => {
    const config = loadBackupConfig(minimalEnvironment({ PGKEEP_DATABASE_URL: 'postgresql://alice:pw-socket@/orders?host=/var/run/postgresql' }));

    expect(config.connection).toMatchObject({ host: '/var/run/postgresql', user: 'alice', password: 'pw-socket', database: 'orders' });
  });

  it('takes sslmode from PGSSLMODE when the URL does not set it', () => {
    const config = loadBackupConfig(minimalEnvironment({ PGKEEP_DATABASE_URL: 'postgresql://alice@db.example.com/orders', PGSSLMODE: 'disable' }));

    expect(config.connection.sslMode).toBe('disable');
  });

  it.each([
    ['AWS S3 by default', {}, 'crc64nvme'],
    ['an S3-compatible endpoint by default', { PGKEEP_S3_ENDPOINT: 'http://127.0.0.1:9000' }, 'none'],
    ['AWS S3 with checksums turned off', { PGKEEP_S3_CHECKSUM: 'none' }, 'none'],
    ['an endpoint with checksums turned on', { PGKEEP_S3_ENDPOINT: 'https://s3.example.com', PGKEEP_S3_CHECKSUM: 'CRC64NVME' }, 'crc64nvme'],
    ['an endpoint whose bucket is under Object Lock, by default', { PGKEEP_S3_ENDPOINT: 'http://127.0.0.1:9000', PGKEEP_OBJECT_LOCK: 'true' }, 'crc64nvme'],
  ])('asks S3 to verify checksums as configured: %s', (_label, overrides, expected) => {
    expect(loadBackupConfig(minimalEnvironment(overrides)).s3.checksum).toBe(expected);
  });

  it('uses path-style addressing with an endpoint unless told otherwise', () => {
    expect(loadBackupConfig(minimalEnvironment({ PGKEEP_S3_ENDPOINT: 'http://127.0.0.1:9000' })).s3.forcePathStyle).toBe(true);
    expect(loadBackupConfig(minimalEnvironment({ PGKEEP_S3_ENDPOINT: 'http://127.0.0.1:9000', PGKEEP_S3_FORCE_PATH_STYLE: 'no' })).s3.forcePathStyle).toBe(
      false,
    );
  });
});

describe('loadBackupConfig accepts', () => {
  it.each(['acme-db-backups', 'backups.example.com', '1.2.3.example', 'a1b', 'xn-abc', 'my-s3alias-bucket', '999.168.1.1.1'])(
    'PGKEEP_BUCKET=%s, a name S3 allows',
    (bucket) => {
      expect(loadBackupConfig(minimalEnvironment({ PGKEEP_BUCKET: bucket })).s3.bucket).toBe(bucket);
    },
  );
});

describe('loadBackupConfig rejects', () => {
  it('a missing bucket, environment, host, user and database in one error naming all of them', () => {
    const failure = configurationFailure({});

    expect(failure.stage).toBe('configuration');
    for (const name of ['PGKEEP_BUCKET', 'PGKEEP_ENVIRONMENT', 'PGHOST', 'PGUSER', 'PGDATABASE']) {
      expect(failure.message).toContain(`${name} is not set: expected`);
    }
    expect(failure.remedy).toMatch(/Fix the settings above/);
  });

  it.each([
    ['PGPORT', 'abc', 'PGPORT="abc" is invalid: expected a port number from 1 to 65535.'],
    ['PGPORT', '70000', 'PGPORT="70000" is invalid: expected a port number from 1 to 65535.'],
    ['PGKEEP_COMPRESSION_LEVEL', '25', 'PGKEEP_COMPRESSION_LEVEL="25" is invalid: expected a whole number from 1 to 19.'],
    ['PGKEEP_PART_SIZE_MIB', '5', 'PGKEEP_PART_SIZE_MIB="5" is invalid: expected a whole number from 6 to 512.'],
    ['PGKEEP_PARTS_IN_FLIGHT', '1.5', 'PGKEEP_PARTS_IN_FLIGHT="1.5" is invalid: expected a whole number from 1 to 16.'],
    ['PGSSLMODE', 'maybe', 'PGSSLMODE="maybe" is invalid: expected one of disable, allow, prefer, require, verify-ca, verify-full.'],
    ['PGKEEP_S3_CHECKSUM', 'md5', 'PGKEEP_S3_CHECKSUM="md5" is invalid: expected crc64nvme or none.'],
    [
      'PGKEEP_BUCKET',
      'Bad_Bucket',
      'PGKEEP_BUCKET="Bad_Bucket" is not a valid S3 bucket name: S3 bucket names consist only of lowercase letters, digits, dots (.) and hyphens (-) (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).',
    ],
    ['PGKEEP_S3_ENDPOINT', 'ftp://x', 'PGKEEP_S3_ENDPOINT="ftp://x" is invalid: expected an http(s):// URL of an S3-compatible store.'],
    ['PGKEEP_S3_FORCE_PATH_STYLE', 'sometimes', 'PGKEEP_S3_FORCE_PATH_STYLE="sometimes" is invalid: expected true or false.'],
  ])('%s=%s, saying what it expects', (name, value, expected) => {
    expect(configurationFailure(minimalEnvironment({ [name]: value })).message).toContain(expected);
  });

  // Number() reads all of these as numbers (16, 8, 10, 3, 16); an operator who writes them has
  // made a mistake (or means something else), so only plain decimal digits are whole numbers.
  it.each(['0x10', '8.0', '1e1', '0b11', '0o20', '1_000', '16 MiB'])('a whole-number setting written as %j, not as decimal digits', (value) => {
    const failure = configurationFailure(minimalEnvironment({ PGKEEP_PART_SIZE_MIB: value, PGKEEP_COMPRESSION_LEVEL: value, PGPORT: value }));

    expect(failure.message).toContain(`PGKEEP_PART_SIZE_MIB="${value}" is invalid: expected a whole number from 6 to 512.`);
    expect(failure.message).toContain(`PGKEEP_COMPRESSION_LEVEL="${value}" is invalid: expected a whole number from 1 to 19.`);
    expect(failure.message).toContain(`PGPORT="${value}" is invalid: expected a port number from 1 to 65535.`);
  });

  // S3's general purpose bucket naming rules, each one a name S3 refuses to create:
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
  it.each([
    ['192.168.1.1', 'S3 bucket names are never formatted as an IP address'],
    ['a..b', 'S3 bucket names never contain two adjacent dots'],
    ['xn--abc', 'S3 reserves the prefix "xn--"'],
    ['sthree-backups', 'S3 reserves the prefix "sthree-"'],
    ['sthree-configurator', 'S3 reserves the prefix "sthree-"'],
    ['amzn-s3-demo-backups', 'S3 reserves the prefix "amzn-s3-demo-"'],
    ['backups-s3alias', 'S3 reserves the suffix "-s3alias"'],
    ['backups--ol-s3', 'S3 reserves the suffix "--ol-s3"'],
    ['backups.mrap', 'S3 reserves the suffix ".mrap"'],
    ['backups--x-s3', 'S3 reserves the suffix "--x-s3"'],
    ['backups--table-s3', 'S3 reserves the suffix "--table-s3"'],
    ['ab', 'it is 2 characters long; S3 bucket names have 3 to 63'],
    ['a'.repeat(64), 'it is 64 characters long; S3 bucket names have 3 to 63'],
    ['-backups', 'S3 bucket names begin and end with a letter or digit'],
    ['backups.', 'S3 bucket names begin and end with a letter or digit'],
  ])('PGKEEP_BUCKET=%s, which S3 refuses, saying which rule it breaks', (bucket, rule) => {
    expect(configurationFailure(minimalEnvironment({ PGKEEP_BUCKET: bucket })).message).toContain(
      `PGKEEP_BUCKET="${bucket}" is not a valid S3 bucket name: ${rule} (`,
    );
  });

  it.each([
    ['on AWS', {}],
    ['with an endpoint', { PGKEEP_S3_ENDPOINT: 'http://127.0.0.1:9000' }],
  ])('PGKEEP_S3_CHECKSUM=none on a bucket under Object Lock (%s), in one line saying what to do', (_label, endpoint) => {
    const failure = configurationFailure(minimalEnvironment({ ...endpoint, PGKEEP_OBJECT_LOCK: 'true', PGKEEP_S3_CHECKSUM: 'none' }));

    expect(failure.message.split('\n').slice(1)).toEqual([
      '  - PGKEEP_S3_CHECKSUM=none cannot be used with PGKEEP_OBJECT_LOCK=true: S3 refuses every upload without a checksum to a bucket under Object Lock; remove PGKEEP_S3_CHECKSUM (crc64nvme is the default there) or set it to crc64nvme.',
    ]);
  });

  it('PGKEEP_OBJECT_LOCK that is not true or false', () => {
    expect(configurationFailure(minimalEnvironment({ PGKEEP_OBJECT_LOCK: 'governance' })).message).toContain(
      'PGKEEP_OBJECT_LOCK="governance" is invalid: expected true or false.',
    );
  });

  it('a catalog name that cannot be a key, naming PGKEEP_DATABASE_NAME', () => {
    expect(configurationFailure(minimalEnvironment({ PGKEEP_DATABASE_NAME: 'shop\u0000' })).message).toMatch(/PGKEEP_DATABASE_NAME is invalid: .*NUL/);
  });

  it.each([
    ['a non-postgres scheme', 'mysql://alice:pw@db/orders', /PGKEEP_DATABASE_URL is invalid: expected a postgresql:\/\//],
    ['no database', 'postgresql://alice:pw@db.example.com', /PGKEEP_DATABASE_URL names no database/],
    ['no user', 'postgresql://db.example.com/orders', /PGKEEP_DATABASE_URL has no user name/],
    ['no host', 'postgresql://alice:pw@/orders', /PGKEEP_DATABASE_URL has no host/],
    ['an invalid sslmode', 'postgresql://alice:pw@db/orders?sslmode=maybe', /sslmode in PGKEEP_DATABASE_URL="maybe" is invalid/],
  ])('a PGKEEP_DATABASE_URL with %s', (_label, url, expected) => {
    expect(configurationFailure(minimalEnvironment({ PGKEEP_DATABASE_URL: url })).message).toMatch(expected);
  });

  it('several bad values in one error, so they can all be fixed at once', () => {
    const failure = configurationFailure(minimalEnvironment({ PGPORT: 'abc', PGKEEP_COMPRESSION_LEVEL: '25', PGKEEP_BUCKET: 'Bad_Bucket' }));

    expect(failure.message).toContain('PGPORT=');
    expect(failure.message).toContain('PGKEEP_COMPRESSION_LEVEL=');
    expect(failure.message).toContain('PGKEEP_BUCKET=');
  });
});

describe('passwords in configuration errors', () => {
  const password = 'Xyzzy-p@ss:w/rd-77';

  function everythingPrintable(failure: BackupFailure): string {
    return [failure.message, failure.remedy, inspect(failure, { depth: 5 }), JSON.stringify(failure)].join('\n');
  }

  it('never appear when the password comes from PGPASSWORD', () => {
    const failure = configurationFailure(minimalEnvironment({ PGPASSWORD: password, PGPORT: 'abc', PGSSLMODE: 'maybe', PGKEEP_BUCKET: 'Bad_Bucket' }));

    expect(everythingPrintable(failure)).not.toContain(password);
  });

  it.each([
    ['an otherwise valid URL', (encoded: string) => `postgresql://alice:${encoded}@db.example.com/orders?sslmode=maybe`],
    ['a URL with no database', (encoded: string) => `postgresql://alice:${encoded}@db.example.com`],
    ['a URL with a bad port', (encoded: string) => `postgresql://alice:${encoded}@db.example.com:port/orders`],
    ['a URL with an empty host', (encoded: string) => `postgresql://alice:${encoded}@/orders`],
  ])('never appear, raw or URL-encoded, when the password is in %s', (_label, urlWith) => {
    const encoded = encodeURIComponent(password);

    const failure = configurationFailure(minimalEnvironment({ PGKEEP_DATABASE_URL: urlWith(encoded), PGKEEP_BUCKET: 'Bad_Bucket' }));

    expect(failure.message).toContain('PGKEEP_BUCKET=');
    expect(everythingPrintable(failure)).not.toContain(password);
    expect(everythingPrintable(failure)).not.toContain(encoded);
  });
});

describe('redactSecrets', () => {
  it('hides the password of any postgres connection URL, registered or not', () => {
    const text = 'could not connect to postgresql://alice:never-registered-pw@db.example.com:5432/orders (timeout)';

    expect(redactSecrets(text)).toBe('could not connect to postgresql://alice:[REDACTED]@db.example.com:5432/orders (timeout)');
  });

  it('hides a registered secret wherever it appears, also in URL-encoded form', () => {
    const secret = 'Registered/s3cret@value';
    registerSecret(secret);

    const redacted = redactSecrets(`pg_dump said: password "${secret}" rejected; url had ${encodeURIComponent(secret)}`);

    expect(redacted).toBe('pg_dump said: password "[REDACTED]" rejected; url had [REDACTED]');
  });

  it('leaves the placeholder of the example URL in a configuration message readable', () => {
    const failure = configurationFailure(minimalEnvironment({ PGKEEP_DATABASE_URL: 'mysql://alice:pw@db/orders' }));

    expect(redactSecrets(failure.message)).toContain('PGKEEP_DATABASE_URL is invalid: expected a postgresql://user:PASSWORD@host:port/database URL.');
  });

  it.each(['Password', 'PASSWORD1', 'password'])('still hides a real URL password %j that merely resembles the placeholder', (password) => {
    expect(redactSecrets(`postgresql://alice:${password}@db/orders`)).toBe('postgresql://alice:[REDACTED]@db/orders');
  });

  it('leaves text without secrets unchanged', () => {
    expect(redactSecrets('connection to db.example.com:5432 refused')).toBe('connection to db.example.com:5432 refused');
  });
});
