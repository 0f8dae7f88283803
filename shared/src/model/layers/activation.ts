/** Activation: applies one of ../activations.ts (relu, tanh, gelu, …) elementwise. */
import { z } from 'zod';
import { ActivationSchema, applyActivation } from '../activations.js';
import { defineLayer } from '../types.js';

const schema = z.strictObject({ activation: ActivationSchema });

export const Activation = defineLayer<z.output<typeof schema>>({
  type: 'Activation',
  schema,
  shape: (_c, [x]) => x!,
  forward: (tf, c, [x]) => applyActivation(tf, c.activation, x!),
  forwardBatched: 'fold',
});
