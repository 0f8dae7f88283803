/**
 * AveragePooling2D (NHWC): tf.avgPool ('same' averages over the pixels inside the image, as
 * TensorFlow does). Task-batched: tasks folded into the batch.
 */
import { pool2d } from './pooling.js';

export const AveragePooling2D = pool2d('AveragePooling2D', 'avgPool');
