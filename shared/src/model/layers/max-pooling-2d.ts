/** MaxPooling2D (NHWC): tf.maxPool, whose gradient's gradient the worker registers. Task-batched: tasks folded into the batch. */
import { pool2d } from './pooling.js';

export const MaxPooling2D = pool2d('MaxPooling2D', 'maxPool');
