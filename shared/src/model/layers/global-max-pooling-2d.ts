/** GlobalMaxPooling2D: the maximum over H and W of [N, H, W, C] (keepdims keeps them as 1s). */
import { globalPool } from './pooling.js';

export const GlobalMaxPooling2D = globalPool('GlobalMaxPooling2D', 'max', 2);
