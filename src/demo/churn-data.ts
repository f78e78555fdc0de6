/**
 * Synthetic churn data: the distribution the example model was trained on and the demo
 * day is drawn from. Deterministic for a seed, so a demo day and the model card agree.
 */

export const CHURN_FEATURES = [
  'tenure_months',
  'monthly_charges',
  'total_charges',
  'contract_months',
  'support_tickets_90d',
  'late_payments_12m',
  'avg_session_minutes',
  'sessions_30d',
  'days_since_login',
  'devices',
  'has_fiber',
  'has_streaming',
  'has_phone',
  'paperless_billing',
  'autopay',
  'senior',
  'dependents',
  'discount_pct',
  'nps_score',
  'outage_minutes_30d',
] as const;

/** The demo's generator: seeded, so a demo day is the same on every machine. */
export { seededRandom as rng } from '../random.js';

export interface ChurnRow {
  customerId: string;
  features: number[];
  /** 1 when this customer churned (drawn from the true churn probability). */
  churned: number;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** Draws one customer. Churn risk rises with short tenure, monthly contracts, tickets, late payments and inactivity. */
export function drawCustomer(next: () => number, id: number): ChurnRow {
  const bit = (p: number) => (next() < p ? 1 : 0);
  const contract = [1, 12, 24][Math.floor(next() * 3)] as number;
  const tenure = Math.floor(next() ** 1.5 * 72) + 1;
  const fiber = bit(0.45);
  const streaming = bit(0.4);
  const monthly = round(20 + 35 * fiber + 15 * streaming + next() * 30, 2);
  const tickets = Math.floor(-Math.log(1 - next()) * 1.2);
  const late = Math.floor(-Math.log(1 - next()) * 0.8);
  const sessions = Math.floor(next() * 60);
  const sinceLogin = Math.floor(-Math.log(1 - next()) * (sessions > 10 ? 3 : 20));
  const autopay = bit(0.5);
  const discount = round(bit(0.25) * next() * 30, 1);
  const nps = Math.floor(next() * 11);
  const outage = Math.floor(bit(0.2) * next() * 240);
  const features = [
    tenure,
    monthly,
    round(monthly * tenure * (0.9 + next() * 0.2), 2),
    contract,
    tickets,
    late,
    round(5 + next() * 55, 1),
    sessions,
    sinceLogin,
    1 + Math.floor(next() * 4),
    fiber,
    streaming,
    bit(0.9),
    bit(0.6),
    autopay,
    bit(0.16),
    bit(0.3),
    discount,
    nps,
    outage,
  ];
  const z =
    1.0 -
    0.045 * tenure +
    0.02 * (monthly - 60) -
    0.09 * contract +
    0.35 * tickets +
    0.45 * late -
    0.02 * sessions +
    0.04 * sinceLogin +
    0.4 * fiber -
    0.5 * autopay -
    0.03 * discount -
    0.18 * (nps - 5) +
    0.006 * outage;
  const p = 1 / (1 + Math.exp(-z));
  return { customerId: `C${String(id).padStart(8, '0')}`, features, churned: bit(p) };
}
