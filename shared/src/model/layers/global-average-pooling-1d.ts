/** GlobalAveragePooling1D: the mean over L of [N, L, C] (keepdims keeps it as 1). */
import { globalPool } from './pooling.js';

export const GlobalAveragePooling1D = globalPool('GlobalAveragePooling1D', 'mean', 1);
