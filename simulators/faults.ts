import { json, Router } from 'express';

/**
 * Fault injection shared by the ABS, GKB and EKO simulators.
 * Set at start from SIM_FAULTS ("abs.http5xx=0.3,abs.latencyMs=200") and changed at run time
 * through each simulator's POST /_sim/faults (JSON object of the same keys without the prefix).
 */
export type FaultSettings = Record<string, number>;

export class Faults {
  private settings: FaultSettings;
  constructor(
    private readonly system: string,
    initial: FaultSettings = {},
    private readonly random: () => number = Math.random,
  ) {
    this.settings = { ...initial };
  }
  /** Parses the SIM_FAULTS syntax, keeping the entries of this simulator's system. */
  static fromSpec(system: string, spec: string, random?: () => number): Faults {
    const settings: FaultSettings = {};
    for (const part of spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const m = /^([a-z]+)\.([A-Za-z0-9]+)=(-?\d+(\.\d+)?)$/.exec(part);
      if (!m) throw new Error(`SIM_FAULTS: cannot read "${part}" (expected system.key=number)`);
      if (m[1] === system) settings[m[2]] = Number(m[3]);
    }
    return new Faults(system, settings, random);
  }
  get(key: string, fallback = 0): number {
    return this.settings[key] ?? fallback;
  }
  /** True with the configured probability of the given key (0..1). */
  roll(key: string): boolean {
    const p = this.get(key);
    return p > 0 && this.random() < p;
  }
  set(update: FaultSettings): void {
    for (const [k, v] of Object.entries(update)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`fault ${this.system}.${k}: expected a number`);
      this.settings[k] = v;
    }
  }
  reset(): void {
    this.settings = {};
  }
  snapshot(): FaultSettings {
    return { ...this.settings };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The run-time fault control every simulator serves at /_sim/faults: GET shows the faults and the
 * knobs, POST a JSON object of knobs changes them (unknown knobs are refused), DELETE clears them.
 */
export function faultControl(faults: Faults, knobs: Record<string, string>, onChange?: (snapshot: FaultSettings) => void): Router {
  const router = Router();
  const state = () => ({ faults: faults.snapshot(), knobs });
  router.get('/_sim/faults', (_req, res) => {
    res.json(state());
  });
  router.post('/_sim/faults', json(), (req, res) => {
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      res.status(400).json({ error: 'expected a JSON object of fault knobs, e.g. {"http5xx": 0.3}', knobs });
      return;
    }
    const unknown = Object.keys(body).filter((k) => !(k in knobs));
    if (unknown.length > 0) {
      res.status(400).json({ error: `unknown fault knob(s): ${unknown.join(', ')}`, knobs });
      return;
    }
    try {
      faults.set(body as FaultSettings);
    } catch (err) {
      res.status(400).json({ error: (err as Error).message, knobs });
      return;
    }
    onChange?.(faults.snapshot());
    res.json(state());
  });
  router.delete('/_sim/faults', (_req, res) => {
    faults.reset();
    onChange?.(faults.snapshot());
    res.json(state());
  });
  return router;
}
