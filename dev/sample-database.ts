/**
 * Realistic sample database for the local run, the integration tests and the benchmark.
 *
 * Every row is generated inside PostgreSQL (INSERT ... SELECT over generate_series), so Node never
 * holds row data and a gigabyte loads in well under a minute on 2 cores. The shape is fixed; the values are random.
 * Two fact tables (sales.orders, sales.order_lines) grow until pg_database_size reaches the
 * requested size; everything else is small and fixed, but covers the object kinds a backup must
 * carry through pg_dump/pg_restore (enum, domain, partitions, views, triggers, identity, generated
 * columns, large objects, non-ASCII identifiers, an empty table).
 */
import type pg from 'pg';

export interface SampleDatabaseOptions {
  /** Approximate total size of table data to generate, in MB (pg_database_size is a good check). Default 40 (about 150 thousand rows). The benchmark will ask for 500 and 3000. */
  sizeMb?: number;
  onProgress?: (message: string) => void;
}

export interface SampleDatabaseSummary {
  tables: number;
  rows: number;
  /** pg_database_size after loading. */
  bytes: number;
}

const DEFAULT_SIZE_MB = 40;
// The fixed tables plus an empty database's catalog take about 15 MB; a smaller sizeMb gets just
// those, with no orders.
const MAX_SIZE_MB = 1_000_000;
const MB = 1024 * 1024;

const CUSTOMER_COUNT = 5_000;
const WAREHOUSE_COUNT = 12;
const PRODUCT_COUNT = 1_000;
/** inventory.product_id_seq starts here, so product ids are not confused with row numbers. */
const FIRST_PRODUCT_ID = 1000;
const EVENT_COUNT = 8_000;
const FRENCH_CLIENT_COUNT = 300;

/** Keeps each INSERT ... SELECT around 200k rows (an order has 1-7 lines), so memory stays flat. */
const MAX_ORDERS_PER_BATCH = 60_000;
/** First guess of one order's footprint with its lines and primary keys; replaced by a measurement after the first batch. */
const INITIAL_BYTES_PER_ORDER = 900;
/**
 * Secondary indexes and foreign keys are added after the load (much faster than maintaining them
 * row by row); they grow the fact tables by roughly this fraction, so the load stops short by it.
 */
const DEFERRED_INDEX_SHARE = 0.07;

// Small vocabularies mixed per row: text varies like real data and compresses like it (a few x,
// not the 100x a repeated string would give).
const WORDS = [
  'delivery',
  'package',
  'please',
  'leave',
  'door',
  'front',
  'back',
  'garden',
  'neighbour',
  'call',
  'before',
  'after',
  'arrival',
  'fragile',
  'handle',
  'care',
  'gift',
  'wrap',
  'birthday',
  'office',
  'reception',
  'weekend',
  'morning',
  'evening',
  'urgent',
  'replacement',
  'broken',
  'return',
  'exchange',
  'size',
  'colour',
  'blue',
  'red',
  'green',
  'black',
  'white',
  'large',
  'small',
  'medium',
  'extra',
  'cotton',
  'steel',
  'oak',
  'glass',
  'leather',
  'wool',
  'ceramic',
  'bamboo',
  'linen',
  'copper',
  'invoice',
  'company',
  'reference',
  'customer',
  'account',
  'loyalty',
  'discount',
  'voucher',
  'promotion',
  'bundle',
  'shipping',
  'express',
  'standard',
  'tracking',
  'courier',
  'parcel',
  'locker',
  'pickup',
  'store',
  'warehouse',
  'the',
  'a',
  'and',
  'with',
  'for',
  'to',
  'of',
  'in',
  'on',
  'not',
  'is',
  'was',
  'be',
  'it',
  'this',
  'that',
  'my',
  'our',
  'your',
  'we',
  'quality',
  'comfortable',
  'durable',
  'lightweight',
  'waterproof',
  'handmade',
  'organic',
  'recycled',
  'premium',
  'classic',
  'kitchen',
  'bedroom',
  'bathroom',
  'outdoor',
  'travel',
  'sport',
  'kids',
  'pet',
  'desk',
  'lamp',
  'chair',
  'table',
  'shelf',
  'mug',
  'bottle',
  'jacket',
  'scarf',
  'boots',
  'backpack',
  'blanket',
];
const FIRST_NAMES = [
  'Olivia',
  'Liam',
  'Emma',
  'Noah',
  'Amelia',
  'Oliver',
  'Ava',
  'Elijah',
  'Sophia',
  'Lucas',
  'Mia',
  'Mateo',
  'Isabella',
  'Levi',
  'Charlotte',
  'Hiroshi',
  'Aisha',
  'Chen',
  'Fatima',
  'Ivan',
  'Zoë',
  'José',
  'Søren',
  'Łukasz',
  'Anaïs',
  'Björn',
  'Çağla',
  'Nguyễn',
  'Priya',
  'Kwame',
];
const LAST_NAMES = [
  'Smith',
  'Johnson',
  'Williams',
  'Brown',
  'Jones',
  'Garcia',
  'Miller',
  'Davis',
  'Rodriguez',
  'Martinez',
  'Müller',
  'Schmidt',
  'Dubois',
  'Lefèvre',
  'Rossi',
  'Kowalski',
  'Novák',
  'Andersson',
  'Tanaka',
  'Kim',
  'Okafor',
  'Haddad',
  'Silva',
  'Santos',
  'Ivanova',
  'Nakamura',
  'García',
  'Øvergaard',
  'Yılmaz',
  'Patel',
];
const CITIES = [
  'Lisbon',
  'Porto',
  'Madrid',
  'Paris',
  'Lyon',
  'Berlin',
  'Hamburg',
  'München',
  'Wien',
  'Zürich',
  'Milano',
  'Roma',
  'Amsterdam',
  'Bruxelles',
  'København',
  'Stockholm',
  'Oslo',
  'Helsinki',
  'Warszawa',
  'Praha',
  'Dublin',
  'London',
  'Manchester',
  'Edinburgh',
  'Kraków',
  'Göteborg',
  'Sevilla',
  'Marseille',
  'Tallinn',
  'Riga',
];
const STREETS = [
  'Main Street',
  'High Street',
  'Rue de la Paix',
  'Hauptstraße',
  'Via Roma',
  'Calle Mayor',
  'Kungsgatan',
  'Station Road',
  'Church Lane',
  'Park Avenue',
];
const COUNTRIES = ['PT', 'ES', 'FR', 'DE', 'AT', 'CH', 'IT', 'NL', 'BE', 'DK', 'SE', 'NO', 'FI', 'PL', 'CZ', 'IE', 'GB', 'EE', 'LV'];
const EMAIL_DOMAINS = ['example.com', 'mail.example.org', 'post.example.net', 'corp.example.com'];
const CATEGORIES = ['furniture', 'kitchen', 'apparel', 'outdoor', 'toys', 'books', 'garden', 'electronics', 'beauty', 'sports'];
const EVENT_TYPES = ['page_view', 'search', 'add_to_cart', 'remove_from_cart', 'checkout_started', 'checkout_completed', 'login', 'logout'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
];
const CURRENCIES = ['EUR', 'EUR', 'EUR', 'GBP', 'SEK', 'DKK', 'PLN', 'CHF'];

function sqlText(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function sqlTextArray(values: readonly string[]): string {
  return `ARRAY[${values.map(sqlText).join(',')}]::text[]`;
}

/** A uniformly random element of the list, drawn per row. */
function pick(values: readonly string[]): string {
  return `(${sqlTextArray(values)})[1 + floor(random() * ${values.length})::int]`;
}

/** `wordCount` random words separated by spaces, drawn per row. */
function phrase(wordCount: number): string {
  return `concat_ws(' ', ${Array.from({ length: wordCount }, () => pick(WORDS)).join(', ')})`;
}

/** A random timestamp in [from, from + days). */
function randomTimestamp(from: string, days: number): string {
  return `(timestamptz '${from}' + random() * interval '${days} days')`;
}

function randomIpv4(): string {
  return `('10.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int || '.' || (1 + floor(random() * 254)::int))::inet`;
}

const SCHEMA_DDL = `
CREATE SCHEMA sales;
CREATE SCHEMA inventory;
CREATE SCHEMA analytics;
CREATE SCHEMA "données";
COMMENT ON SCHEMA sales IS 'Customers and their orders';

CREATE TYPE public.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
CREATE DOMAIN public.email_address AS text CHECK (VALUE ~ '^[^@[:space:]]+@[^@[:space:]]+\\.[a-z]{2,}$');
CREATE DOMAIN public.percentage AS numeric(5,2) CHECK (VALUE >= 0 AND VALUE <= 100);

CREATE FUNCTION public.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TABLE public.app_settings (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.documents (
  id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  title text NOT NULL,
  content oid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN public.documents.content IS 'Large object holding the document body';

CREATE TABLE inventory.warehouses (
  id smallint PRIMARY KEY,
  code varchar(8) NOT NULL UNIQUE,
  city text NOT NULL,
  country char(2) NOT NULL,
  opened_on date NOT NULL,
  is_active boolean NOT NULL DEFAULT true
);

CREATE SEQUENCE inventory.product_id_seq AS integer START WITH ${FIRST_PRODUCT_ID} INCREMENT BY 1;
CREATE TABLE inventory.products (
  id integer PRIMARY KEY DEFAULT nextval('inventory.product_id_seq'),
  sku varchar(32) NOT NULL UNIQUE,
  name text NOT NULL,
  description text,
  category text NOT NULL,
  unit_price numeric(12,2) NOT NULL CHECK (unit_price >= 0),
  weight_grams integer,
  attributes jsonb NOT NULL DEFAULT '{}',
  thumbnail bytea,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE inventory.product_id_seq OWNED BY inventory.products.id;
CREATE INDEX products_attributes_gin ON inventory.products USING gin (attributes jsonb_path_ops);
CREATE INDEX products_category_idx ON inventory.products (category);

CREATE TABLE inventory.stock_levels (
  warehouse_id smallint NOT NULL REFERENCES inventory.warehouses (id),
  product_id integer NOT NULL REFERENCES inventory.products (id),
  quantity integer NOT NULL,
  reorder_every interval NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (warehouse_id, product_id)
);
CREATE TRIGGER stock_levels_touch BEFORE UPDATE ON inventory.stock_levels
  FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE TABLE sales.customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  external_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  full_name text NOT NULL,
  email public.email_address NOT NULL,
  country char(2) NOT NULL,
  phone varchar(20),
  signup_date date NOT NULL,
  is_active boolean NOT NULL DEFAULT true,
  preferences jsonb NOT NULL DEFAULT '{}',
  tags text[] NOT NULL DEFAULT '{}',
  last_login_ip inet,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Loaded without foreign keys and secondary indexes; they are added once the rows are in.
CREATE TABLE sales.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL,
  status public.order_status NOT NULL DEFAULT 'pending',
  ordered_at timestamptz NOT NULL,
  shipped_on date,
  currency char(3) NOT NULL,
  subtotal numeric(12,2) NOT NULL,
  tax numeric(12,2) NOT NULL,
  total numeric(12,2) GENERATED ALWAYS AS (subtotal + tax) STORED,
  shipping_address jsonb NOT NULL,
  notes text,
  coupon_codes text[],
  client_ip inet,
  delivery_window interval,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sales.orders IS 'One row per customer order; totals include tax';
CREATE TRIGGER orders_touch BEFORE UPDATE ON sales.orders
  FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE TABLE sales.order_lines (
  order_id bigint NOT NULL,
  line_no smallint NOT NULL,
  product_id integer NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0),
  unit_price numeric(12,2) NOT NULL,
  discount_pct public.percentage NOT NULL DEFAULT 0,
  line_total numeric(12,2) GENERATED ALWAYS AS (round(quantity * unit_price * (100 - discount_pct) / 100, 2)) STORED,
  options jsonb,
  gift_message text,
  PRIMARY KEY (order_id, line_no)
);

-- Deliberately left empty: a backup must restore tables that have no rows.
CREATE TABLE sales.refunds (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id bigint NOT NULL,
  amount numeric(12,2) NOT NULL CHECK (amount > 0),
  reason text,
  refunded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE analytics.events (
  event_id bigint NOT NULL,
  occurred_at timestamptz NOT NULL,
  customer_id bigint,
  session_id uuid NOT NULL,
  event_type varchar(32) NOT NULL,
  properties jsonb NOT NULL,
  client_ip inet,
  user_agent varchar(200),
  duration interval,
  PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE analytics.events_2024_01 PARTITION OF analytics.events FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00');
CREATE TABLE analytics.events_2024_02 PARTITION OF analytics.events FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00');
CREATE TABLE analytics.events_2024_03 PARTITION OF analytics.events FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-04-01 00:00:00+00');
CREATE TABLE analytics.events_2024_04 PARTITION OF analytics.events FOR VALUES FROM ('2024-04-01 00:00:00+00') TO ('2024-05-01 00:00:00+00');
CREATE TABLE analytics.events_default PARTITION OF analytics.events DEFAULT;
CREATE INDEX events_properties_gin ON analytics.events USING gin (properties jsonb_path_ops);
CREATE INDEX events_customer_idx ON analytics.events (customer_id, occurred_at);

CREATE TABLE "données"."clients_été" (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "prénom" text NOT NULL,
  "nom_de_famille" text NOT NULL,
  "ville" text NOT NULL,
  "créé_le" timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE "données"."clients_été" IS 'Clients de la saison d''été — identifiants non ASCII';

CREATE VIEW sales.customer_order_totals AS
  SELECT c.id AS customer_id, c.full_name, count(o.id) AS order_count, coalesce(sum(o.total), 0) AS lifetime_total
  FROM sales.customers c
  LEFT JOIN sales.orders o ON o.customer_id = c.id
  GROUP BY c.id, c.full_name;
`;

/** Runs after the fact tables are loaded: building these in one pass is far cheaper than per row. */
const POST_LOAD_DDL = `
ALTER TABLE sales.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES sales.customers (id);
ALTER TABLE sales.order_lines ADD CONSTRAINT order_lines_order_fk FOREIGN KEY (order_id) REFERENCES sales.orders (id) ON DELETE CASCADE;
ALTER TABLE sales.order_lines ADD CONSTRAINT order_lines_product_fk FOREIGN KEY (product_id) REFERENCES inventory.products (id);
ALTER TABLE sales.refunds ADD CONSTRAINT refunds_order_fk FOREIGN KEY (order_id) REFERENCES sales.orders (id);
CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
CREATE INDEX orders_ordered_at_idx ON sales.orders (ordered_at);
CREATE INDEX order_lines_product_idx ON sales.order_lines (product_id);

CREATE MATERIALIZED VIEW analytics.monthly_revenue AS
  SELECT date_trunc('month', ordered_at) AS month, currency, status, count(*) AS orders, sum(total) AS revenue
  FROM sales.orders
  GROUP BY 1, 2, 3
WITH DATA;
CREATE UNIQUE INDEX monthly_revenue_key ON analytics.monthly_revenue (month, currency, status);
`;

function fixedDataStatements(): string[] {
  return [
    `INSERT INTO public.app_settings (key, value) VALUES
      ('checkout', '{"guest_checkout": true, "max_items": 50, "payment_methods": ["card", "paypal", "invoice"]}'),
      ('shipping', '{"free_above": {"EUR": 49.00, "GBP": 45.00}, "carriers": [{"name": "Post", "days": 3}, {"name": "Express", "days": 1}]}'),
      ('features', '{"recommendations": {"enabled": true, "model": "v3"}, "reviews": {"enabled": false}}')`,
    `INSERT INTO inventory.warehouses (id, code, city, country, opened_on, is_active)
      SELECT g, 'WH-' || lpad(g::text, 3, '0'), ${pick(CITIES)}, ${pick(COUNTRIES)},
             date '2010-01-01' + (random() * 4000)::int, g % 7 <> 0
      FROM generate_series(1, ${WAREHOUSE_COUNT}) g`,
    `INSERT INTO inventory.products (sku, name, description, category, unit_price, weight_grams, attributes, thumbnail, created_at)
      SELECT 'SKU-' || lpad(g::text, 6, '0') || '-' || upper(substr(md5(g::text), 1, 4)),
             initcap(${phrase(2)}) || ' ' || initcap(${pick(WORDS)}),
             ${phrase(12)} || '. ' || ${phrase(8)} || '.',
             ${pick(CATEGORIES)},
             round((1 + random() * 499)::numeric, 2),
             (50 + random() * 20000)::int,
             jsonb_build_object(
               'colour', ${pick(['red', 'blue', 'green', 'black', 'white', 'oak', 'steel'])},
               'material', ${pick(['cotton', 'steel', 'oak', 'glass', 'leather', 'wool', 'ceramic', 'bamboo'])},
               'dimensions', jsonb_build_object('w', (5 + random() * 200)::int, 'h', (5 + random() * 200)::int, 'd', (5 + random() * 100)::int),
               'tags', jsonb_build_array(${pick(WORDS)}, ${pick(WORDS)}),
               'eco', random() < 0.3),
             decode(md5(g::text || random()::text) || md5(random()::text), 'hex'),
             ${randomTimestamp('2019-01-01', 1800)}
      FROM generate_series(1, ${PRODUCT_COUNT}) g`,
    `INSERT INTO inventory.stock_levels (warehouse_id, product_id, quantity, reorder_every, updated_at)
      SELECT w.id, p.id, (random() * 500)::int, make_interval(days => 7 * (1 + (random() * 8)::int)), ${randomTimestamp('2024-01-01', 180)}
      FROM inventory.warehouses w CROSS JOIN inventory.products p
      WHERE random() < 0.4`,
    `INSERT INTO sales.customers (full_name, email, country, phone, signup_date, is_active, preferences, tags, last_login_ip, created_at)
      SELECT n.first_name || ' ' || n.last_name,
             lower(translate(n.first_name, ' ', '')) || '.' || g || '@' || ${pick(EMAIL_DOMAINS)},
             ${pick(COUNTRIES)},
             CASE WHEN random() < 0.8 THEN '+3' || lpad((random() * 1e9)::bigint::text, 10, '0') END,
             date '2018-01-01' + (random() * 2400)::int,
             random() < 0.92,
             jsonb_build_object('newsletter', random() < 0.5, 'language', ${pick(['en', 'fr', 'de', 'pt', 'es', 'it', 'sv'])},
                                'notifications', jsonb_build_object('email', random() < 0.7, 'sms', random() < 0.2)),
             ARRAY[${pick(['vip', 'wholesale', 'newsletter', 'returning', 'b2b', 'student'])}, ${pick(['early_adopter', 'churn_risk', 'referral', 'mobile'])}],
             ${randomIpv4()},
             ${randomTimestamp('2018-01-01', 2400)}
      FROM generate_series(1, ${CUSTOMER_COUNT}) g
      -- Per-row subquery (it references g) so that the email can reuse the drawn first name.
      CROSS JOIN LATERAL (SELECT ${pick(FIRST_NAMES)} AS first_name, ${pick(LAST_NAMES)} AS last_name, g AS row_id) n`,
    `INSERT INTO analytics.events (event_id, occurred_at, customer_id, session_id, event_type, properties, client_ip, user_agent, duration)
      SELECT g,
             ${randomTimestamp('2023-12-15', 150)},
             CASE WHEN random() < 0.7 THEN 1 + floor(random() * ${CUSTOMER_COUNT})::bigint END,
             gen_random_uuid(),
             ${pick(EVENT_TYPES)},
             jsonb_build_object('path', '/' || ${pick(CATEGORIES)} || '/' || ${pick(WORDS)}, 'referrer', ${pick(['search', 'email', 'direct', 'social', 'ads'])},
                                'viewport', jsonb_build_object('w', ${pick(['375', '768', '1280', '1920'])}::int, 'h', ${pick(['667', '1024', '800', '1080'])}::int),
                                'query', CASE WHEN random() < 0.3 THEN ${phrase(3)} END),
             ${randomIpv4()},
             ${pick(USER_AGENTS)},
             make_interval(secs => round((random() * 600)::numeric, 3))
      FROM generate_series(1, ${EVENT_COUNT}) g`,
    `INSERT INTO "données"."clients_été" ("prénom", "nom_de_famille", "ville", "créé_le")
      SELECT ${pick(['Zoë', 'Anaïs', 'Hélène', 'François', 'Jérôme', 'Noël', 'Cécile', 'Maëlle', 'Léa', 'Raphaël'])},
             ${pick(['Lefèvre', 'Dubois', 'Mercier', 'Bérénger', 'Faure', 'Rousseau', 'Côté', 'Gauthier'])},
             ${pick(['Paris', 'Orléans', 'Besançon', 'Nîmes', 'Genève', 'Montréal', 'Québec', 'Liège'])},
             ${randomTimestamp('2024-06-01', 90)}
      FROM generate_series(1, ${FRENCH_CLIENT_COUNT}) g`,
    `INSERT INTO public.documents (title, content) VALUES
      ('Terms of service', lo_from_bytea(0, convert_to(repeat('Terms of service. These terms govern the use of the shop. ', 200), 'UTF8'))),
      ('Warehouse floor plan', lo_from_bytea(0, (SELECT string_agg(decode(md5(g::text), 'hex'), ''::bytea) FROM generate_series(1, 4096) g)))`,
  ];
}

/** Orders [firstId, lastId] with 1-7 lines each. */
function orderBatchStatements(firstId: number, lastId: number): [orders: string, lines: string] {
  const orders = `INSERT INTO sales.orders (id, customer_id, status, ordered_at, shipped_on, currency, subtotal, tax, shipping_address, notes, coupon_codes, client_ip, delivery_window)
    OVERRIDING SYSTEM VALUE
    SELECT g, 1 + floor(random() * ${CUSTOMER_COUNT})::bigint, s.status, s.ordered_at,
           CASE WHEN s.status IN ('shipped', 'delivered') THEN (s.ordered_at + interval '1 day' * (1 + floor(random() * 6)))::date END,
           ${pick(CURRENCIES)}, s.subtotal, round(s.subtotal * 0.2, 2),
           jsonb_build_object(
             'name', ${pick(FIRST_NAMES)} || ' ' || ${pick(LAST_NAMES)},
             'street', (1 + floor(random() * 250))::int || ' ' || ${pick(STREETS)},
             'city', ${pick(CITIES)},
             'postcode', lpad(floor(random() * 99999)::int::text, 5, '0'),
             'country', ${pick(COUNTRIES)},
             'geo', jsonb_build_object('lat', round((35 + random() * 30)::numeric, 5), 'lon', round((-10 + random() * 35)::numeric, 5)),
             'instructions', CASE WHEN random() < 0.4 THEN ${phrase(6)} END),
           CASE WHEN random() < 0.6 THEN ${phrase(5)} || ' ' || substr(md5(random()::text), 1, 8 + floor(random() * 16)::int) END,
           CASE WHEN random() < 0.15 THEN ARRAY[upper(${pick(WORDS)}) || (floor(random() * 50) * 5)::int] END,
           ${randomIpv4()},
           CASE WHEN random() < 0.5 THEN make_interval(hours => 1 + floor(random() * 8)::int) END
    FROM generate_series(${firstId}, ${lastId}) g
    -- Referencing g makes this a per-row subquery; without it the planner evaluates it once and
    -- every order would share one status, date and subtotal.
    CROSS JOIN LATERAL (SELECT
      (enum_range(NULL::public.order_status))[1 + floor(random() * 6)::int] AS status,
      ${randomTimestamp('2023-01-01', 730)} AS ordered_at,
      round((5 + random() * 995)::numeric, 2) AS subtotal,
      g AS row_id) s`;
  const lines = `INSERT INTO sales.order_lines (order_id, line_no, product_id, quantity, unit_price, discount_pct, options, gift_message)
    SELECT o, l, ${FIRST_PRODUCT_ID} + floor(random() * ${PRODUCT_COUNT})::int,
           1 + floor(random() * random() * 10)::int,
           round((1 + random() * 299)::numeric, 2),
           CASE WHEN random() < 0.25 THEN (5 * (1 + floor(random() * 6)))::numeric(5,2) ELSE 0 END,
           CASE WHEN random() < 0.3 THEN jsonb_build_object('gift_wrap', random() < 0.5, 'size', ${pick(['XS', 'S', 'M', 'L', 'XL'])}, 'colour', ${pick(['red', 'blue', 'green', 'black', 'white'])}) END,
           CASE WHEN random() < 0.1 THEN ${phrase(7)} END
    FROM generate_series(${firstId}, ${lastId}) o
    -- The count must depend on o (random() alone would be evaluated once for all orders).
    CROSS JOIN LATERAL generate_series(1, 1 + abs(hashint8(o) % 7)) l`;
  return [orders, lines];
}

async function currentDatabaseBytes(client: pg.Client): Promise<number> {
  const result = await client.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
  return Number(result.rows[0]?.bytes ?? 0);
}

function validateSizeMb(sizeMb: number | undefined): number {
  if (sizeMb === undefined) return DEFAULT_SIZE_MB;
  // typeof guards callers without type checking, e.g. a command-line value passed on as a string.
  if (typeof sizeMb !== 'number' || !Number.isFinite(sizeMb) || sizeMb <= 0 || sizeMb > MAX_SIZE_MB) {
    const given = typeof sizeMb === 'number' ? String(sizeMb) : JSON.stringify(sizeMb);
    throw new RangeError(
      `createSampleDatabase: sizeMb must be a number of megabytes above 0 and at most ${MAX_SIZE_MB}, got ${given}. ` +
        'Pass e.g. { sizeMb: 40 }, or leave it out for the default of 40.',
    );
  }
  return sizeMb;
}

async function assertDatabaseIsEmpty(client: pg.Client): Promise<void> {
  const result = await client.query<{ database: string; objects: string[] }>(`
    SELECT current_database() AS database, array(
      SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      ORDER BY 1 LIMIT 5
    ) || array(SELECT format('schema %I', nspname) FROM pg_namespace WHERE nspname IN ('sales', 'inventory', 'analytics', 'données'))
      || array(SELECT 'large object ' || oid FROM pg_largeobject_metadata LIMIT 1) AS objects`);
  const row = result.rows[0];
  if (row && row.objects.length > 0) {
    throw new Error(
      `createSampleDatabase needs an empty database, but "${row.database}" already contains ${row.objects.join(', ')}. ` +
        'Create a fresh database (CREATE DATABASE ...) and connect the client to it.',
    );
  }
}

/**
 * Fills an EMPTY database (the client is connected to it) with the sample schema and data.
 * Batches commit as they go, so after a failure drop the database and start again.
 */
export async function createSampleDatabase(client: pg.Client, options?: SampleDatabaseOptions): Promise<SampleDatabaseSummary> {
  const targetBytes = validateSizeMb(options?.sizeMb) * MB;
  const report = options?.onProgress ?? (() => {});
  const mbOf = (bytes: number) => Math.round(bytes / MB);
  await assertDatabaseIsEmpty(client);

  // Session settings for a bulk load; the data is only test material, so losing the last
  // commits in a crash is acceptable. Reset afterwards because the caller keeps the client.
  await client.query(`SET synchronous_commit = off; SET maintenance_work_mem = '256MB'; SET client_min_messages = warning`);
  try {
    let rows = 0;
    report('sample database: creating schema');
    await client.query(SCHEMA_DDL);
    for (const statement of fixedDataStatements()) {
      rows += (await client.query(statement)).rowCount ?? 0;
    }

    const factBudget = targetBytes - (await currentDatabaseBytes(client));
    // Stop short of the target by the share that the deferred indexes will add.
    const loadTarget = targetBytes - Math.max(0, factBudget) * DEFERRED_INDEX_SHARE;
    let bytes = await currentDatabaseBytes(client);
    let bytesPerOrder = INITIAL_BYTES_PER_ORDER;
    let nextOrderId = 1;
    report(`sample database: ${mbOf(bytes)}/${mbOf(targetBytes)} MB`);
    while (bytes < loadTarget) {
      const ordersWanted = Math.ceil((loadTarget - bytes) / bytesPerOrder);
      const batch = Math.max(1, Math.min(MAX_ORDERS_PER_BATCH, ordersWanted));
      const [ordersSql, linesSql] = orderBatchStatements(nextOrderId, nextOrderId + batch - 1);
      rows += (await client.query(ordersSql)).rowCount ?? 0;
      rows += (await client.query(linesSql)).rowCount ?? 0;
      nextOrderId += batch;
      const bytesAfter = await currentDatabaseBytes(client);
      // Heap files grow in whole pages, so tiny batches can show no growth; keep the old estimate then.
      if (bytesAfter > bytes && batch >= 1000) bytesPerOrder = (bytesAfter - bytes) / batch;
      bytes = bytesAfter;
      report(`sample database: ${mbOf(bytes)}/${mbOf(targetBytes)} MB`);
    }
    // Orders were inserted with explicit ids; move the identity past them so new orders work.
    await client.query(`SELECT setval(pg_get_serial_sequence('sales.orders', 'id'), $1::bigint, $2)`, [Math.max(1, nextOrderId - 1), nextOrderId > 1]);

    report('sample database: adding foreign keys, indexes and the materialized view');
    await client.query(POST_LOAD_DDL);

    // The backup reads planner estimates (reltuples) for very large tables; they need statistics.
    report('sample database: analyzing');
    await client.query('ANALYZE');

    const tables = await client.query<{ count: string }>(`
      SELECT count(*) AS count FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`);
    const finalBytes = await currentDatabaseBytes(client);
    report(`sample database: done, ${mbOf(finalBytes)} MB, ${rows} rows`);
    return { tables: Number(tables.rows[0]?.count ?? 0), rows, bytes: finalBytes };
  } finally {
    // Swallowed: if the connection broke, the error that broke it is the one worth reporting.
    await client.query('RESET synchronous_commit; RESET maintenance_work_mem; RESET client_min_messages').catch(() => undefined);
  }
}
