/** GlobalAveragePooling2D: the mean over H and W of [N, H, W, C] (keepdims keeps them as 1s). */
import { globalPool } from './pooling.js';

export const GlobalAveragePooling2D = globalPool('GlobalAveragePooling2D', 'mean', 2);
